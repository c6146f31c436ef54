//! The SIP suite (issue 13): a call's RTP media adapter against a peer on real UDP sockets,
//! and the SIP user agent against a raw SIP client and SIPp on 127.0.0.1.

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;

mod agent;
mod rtp_media;
