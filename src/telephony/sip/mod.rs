//! SIP trunks as a call transport (issue 13). So far the sans-IO cores the SIP adapter is built
//! on: RFC 4733 telephone events, RTP packets and symmetric-RTP latching, and SDP offer/answer;
//! the RTP jitter buffer is `media::jitter`. Signalling (the stack chosen in
//! docs/ARCHITECTURE.md) and the RTP socket adapter come next.

pub mod dtmf;
pub mod rtp;
pub mod sdp;
