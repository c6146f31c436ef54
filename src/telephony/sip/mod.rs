//! SIP trunks as a call transport (issue 13). So far: the sans-IO cores (RFC 4733 telephone
//! events, RTP packets and symmetric-RTP latching, SDP offer/answer; the jitter buffer is
//! `media::jitter`) and the RTP media adapter (`media.rs`, a `MediaTransport` over a UDP
//! socket). Signalling (rsipstack, chosen in docs/ARCHITECTURE.md) comes next.

pub mod agent;
pub mod dtmf;
pub mod media;
pub mod rtp;
pub mod sdp;
