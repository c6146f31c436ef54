//! Twilio Media Streams as a call's media transport: the adapter between the WebSocket's JSON
//! messages and the session's [`TransportEvent`]s. Inbound `media` chunks are put back in order
//! (`MediaReorder`) and decoded from µ-law; `mark`s named `line-N` report line N played; `stop`
//! ends the call. Outbound frames are µ-law encoded into `media` messages; marks and `clear` go
//! out as Twilio documents them.

use std::collections::VecDeque;

use axum::extract::ws::{Message, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};

use super::stream::{Inbound, MediaReorder, Outbound, json_string};
use crate::dialogue::LineId;
use crate::media::g711;
use crate::session::core::{FRAME, Frame};
use crate::session::transport::{MediaTransport, TransportClosed, TransportEvent, TransportStats};

/// Chunks a missing one waits behind before silence stands in for it.
const REORDER_WINDOW: usize = 3;

pub struct TwilioMedia {
    tx: SplitSink<WebSocket, Message>,
    rx: SplitStream<WebSocket>,
    /// The stream's SID as a JSON string literal, quoted once.
    stream_sid_json: String,
    reorder: MediaReorder,
    /// Events decoded from one message and not yet handed out (a message can release several
    /// reordered frames).
    pending: VecDeque<TransportEvent>,
}

impl TwilioMedia {
    /// Wraps a stream already past its `start` message.
    pub fn new(socket: WebSocket, stream_sid: &str) -> TwilioMedia {
        let (tx, rx) = socket.split();
        TwilioMedia {
            tx,
            rx,
            stream_sid_json: json_string(stream_sid),
            reorder: MediaReorder::new(REORDER_WINDOW),
            pending: VecDeque::new(),
        }
    }

    async fn send(&mut self, message: Outbound<'_>) -> Result<(), TransportClosed> {
        // Sized for a 20 ms media message (base64 of 160 bytes plus the envelope).
        let mut json = String::with_capacity(320);
        message.write_json(&self.stream_sid_json, &mut json);
        self.tx.send(Message::text(json)).await.map_err(|e| TransportClosed(e.to_string()))
    }

    /// Turns one text message into events (none for messages a call does not act on).
    fn take(&mut self, text: &str) {
        let inbound = match Inbound::parse(text) {
            Ok(inbound) => inbound,
            Err(error) => {
                tracing::debug!(%error, "ignoring a malformed stream message");
                return;
            }
        };
        match inbound {
            Inbound::Media { chunk, payload, .. } => {
                self.reorder.push(chunk, payload);
                while let Some(payload) = self.reorder.pop() {
                    let mut pcm: Frame = [0; FRAME];
                    let n = payload.len().min(FRAME);
                    g711::decode_ulaw(&payload[..n], &mut pcm[..n]);
                    self.pending.push_back(TransportEvent::Audio(pcm));
                }
            }
            Inbound::Dtmf { digit } => self.pending.push_back(TransportEvent::Dtmf(digit)),
            Inbound::Mark { name } => {
                if let Some(n) = name.strip_prefix("line-").and_then(|n| n.parse::<u32>().ok()) {
                    self.pending.push_back(TransportEvent::Played(LineId(n)));
                }
            }
            Inbound::Stop { .. } => self.pending.push_back(TransportEvent::Ended),
            Inbound::Connected { .. } | Inbound::Start(_) | Inbound::Unknown { .. } => {}
        }
    }
}

impl MediaTransport for TwilioMedia {
    async fn next_event(&mut self) -> TransportEvent {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
            match self.rx.next().await {
                Some(Ok(Message::Text(text))) => self.take(text.as_str()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    return TransportEvent::Lost("the media stream closed without a stop".into());
                }
                Some(Ok(_)) => {}
            }
        }
    }

    async fn play(&mut self, frame: &Frame) -> Result<(), TransportClosed> {
        let mut payload = [0u8; FRAME];
        g711::encode_ulaw(frame, &mut payload);
        self.send(Outbound::Media { payload: &payload }).await
    }

    async fn mark(&mut self, line: LineId) -> Result<(), TransportClosed> {
        let name = line.to_string();
        self.send(Outbound::Mark { name: &name }).await
    }

    async fn clear(&mut self) -> Result<(), TransportClosed> {
        self.send(Outbound::Clear).await
    }

    async fn close(&mut self) {
        let _ = self.tx.close().await;
    }

    /// A WebSocket ping (RFC 6455 5.5.2); Twilio, like any conforming peer, answers with a pong,
    /// which `next_event` skips.
    async fn keepalive(&mut self) -> Result<(), TransportClosed> {
        self.tx.send(Message::Ping(Default::default())).await.map_err(|e| TransportClosed(e.to_string()))
    }

    fn stats(&self) -> TransportStats {
        TransportStats { frames_lost: self.reorder.lost, frames_late: self.reorder.late }
    }
}
