//! The SIP suite (issue 13). So far: a call's RTP media adapter against a peer on real UDP
//! sockets on 127.0.0.1. Signalling tests against SIPp come with the SIP user agent.

mod rtp_media;
