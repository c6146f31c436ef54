//! What a call needs from a media transport, whatever carries it (Twilio Media Streams today,
//! SIP/RTP and WebRTC next): 20 ms frames of 8 kHz PCM each way, DTMF, a way to learn when sent
//! audio has been played, a way to drop it, and the end of the call. An adapter turns its wire
//! format into these; the session never sees the wire.

use std::future::Future;
use std::time::Duration;

use crate::dialogue::LineId;
use crate::session::core::Frame;

/// How often a running call's transport is asked to show it is alive.
pub const KEEPALIVE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq)]
// Frames travel inline: boxing them would allocate 100 times a second per call.
#[allow(clippy::large_enum_variant)]
pub enum TransportEvent {
    /// One inbound 20 ms frame, decoded, in order (gaps already filled).
    Audio(Frame),
    Dtmf(char),
    /// Everything sent before the line's mark has been played (or dropped by a clear).
    Played(LineId),
    /// The far end hung up.
    Ended,
    /// The transport broke off without a hang-up.
    Lost(String),
}

#[derive(Debug, thiserror::Error)]
#[error("the media transport is closed: {0}")]
pub struct TransportClosed(pub String);

/// Counters an adapter keeps for the call's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Inbound frames that never came and were replaced by silence.
    pub frames_lost: u64,
    /// Inbound frames that came too late or twice and were dropped.
    pub frames_late: u64,
}

pub trait MediaTransport: Send {
    /// The next event. Cancel-safe: a `select!` may drop the future and call again.
    fn next_event(&mut self) -> impl Future<Output = TransportEvent> + Send;
    /// Sends one frame to be played at once (the session paces them).
    fn play(&mut self, frame: &Frame) -> impl Future<Output = Result<(), TransportClosed>> + Send;
    /// Asks for `Played(line)` once everything sent so far has been played. A transport that
    /// plays what it is sent at once may answer at once.
    fn mark(&mut self, line: LineId) -> impl Future<Output = Result<(), TransportClosed>> + Send;
    /// Drops every frame sent and not yet played.
    fn clear(&mut self) -> impl Future<Output = Result<(), TransportClosed>> + Send;
    /// Ends the call's media from our side.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
    /// Called every `KEEPALIVE` while the call runs: a transport with a liveness message (a
    /// WebSocket ping) sends it, so proxies keep the connection and a dead peer shows up as
    /// a failed send. Others do nothing.
    fn keepalive(&mut self) -> impl Future<Output = Result<(), TransportClosed>> + Send {
        async { Ok(()) }
    }
    fn stats(&self) -> TransportStats;
}
