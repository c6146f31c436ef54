//! Twilio: the Media Streams WebSocket protocol and request signatures. Pure modules; the
//! HTTP and WebSocket handlers that use them live at the edge.
//!
//! - `stream`: Media Streams messages both ways, and the inbound chunk reorder buffer.
//! - `signature`: `X-Twilio-Signature` (HMAC-SHA1 of URL + sorted form parameters).
//! - `http`: `/twilio/voice`, `/twilio/status` and the `/twilio/stream` WebSocket.
//! - `media`: a Media Stream as a call's media transport (the session's adapter).
//! - `rest`: the REST calls a carrier needs (create a call, end it).
//! - `carrier`: Twilio as a `Carrier` (places calls through `rest`).
//! - `twiml`: the `<Connect><Stream>` answer to `/twilio/voice`.

pub mod accounts;
pub mod carrier;
pub mod http;
pub mod media;
pub mod rest;
pub mod signature;
pub mod stream;
pub mod twiml;
