//! Twilio's end of a Media Stream, emulated over a real WebSocket: it dials a `/twilio/stream`
//! URL, sends `connected` and `start`, then every 20 ms one `media` chunk of what the callee
//! says (µ-law silence when it says nothing), plays the gateway's audio through a
//! `PlaybackBuffer` (returning `mark`s, honouring `clear`), and sends `dtmf` and `stop` on
//! command. The simulator carrier's virtual callees and the tests' synthetic callers both use
//! it, so the gateway's bridge only ever meets Twilio's wire format.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::playback::PlaybackBuffer;
use crate::telephony::twilio::stream::{CHUNK_SAMPLES, MULAW_SILENCE};

#[derive(Debug, Clone)]
pub struct StreamStart {
    /// `ws://` or `wss://` URL of the gateway's `/twilio/stream`.
    pub url: String,
    pub account_sid: String,
    pub call_sid: String,
    pub stream_sid: String,
    /// The `<Parameter>`s of the TwiML `<Stream>`, sent back in `start.customParameters`.
    pub custom_parameters: BTreeMap<String, String>,
}

#[derive(Debug)]
pub enum PeerCommand {
    /// Queue µ-law audio to say (8 kHz); it goes out 20 ms per tick after what is queued.
    Speak(Vec<u8>),
    /// Stop talking at once (drop what is queued).
    Hush,
    Dtmf(char),
    /// Send a raw text frame (tests: garbage and out-of-order messages).
    Raw(String),
    /// Send a binary frame (Twilio only sends text; tests: a stray binary frame).
    RawBinary(Vec<u8>),
    /// Send `stop` and close, as Twilio does when the call ends.
    HangUp,
    /// Close the socket without `stop` (a dropped connection).
    Drop,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PeerEvent {
    /// One 20 ms frame of what the callee hears.
    Heard { frame: Vec<u8>, audible: bool, at: Instant },
    /// The gateway's mark came back (its audio played, or a clear dropped it).
    Mark { name: String, at: Instant },
    /// The gateway sent `clear`.
    Cleared { at: Instant },
    /// The last frame of a `Speak` went out.
    DoneSpeaking { at: Instant },
    /// A `media` message of the gateway's arrived (before it is queued for playback); the
    /// benches time the gateway's pacing by these.
    MediaReceived { at: Instant },
    /// The socket closed (by the gateway, or after `HangUp`/`Drop`).
    Closed,
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
}

pub struct PeerHandle {
    pub commands: mpsc::Sender<PeerCommand>,
    pub events: mpsc::Receiver<PeerEvent>,
}

/// Connects and starts the stream; the returned handle drives it until the socket closes.
pub async fn connect(start: StreamStart) -> Result<PeerHandle, PeerError> {
    let (socket, _) = tokio_tungstenite::connect_async(start.url.as_str())
        .await
        .map_err(|e| PeerError::Connect { url: start.url.clone(), reason: e.to_string() })?;
    let (commands_tx, commands_rx) = mpsc::channel(64);
    // Events are small and 50 per second; a slow reader loses `Heard` frames rather than
    // stalling the clock (see `emit`).
    let (events_tx, events_rx) = mpsc::channel(4096);
    tokio::spawn(run(socket, start, commands_rx, events_tx));
    Ok(PeerHandle { commands: commands_tx, events: events_rx })
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Wire {
    stream_sid: String,
    sequence: u64,
    chunk: u64,
    started: Instant,
}

impl Wire {
    fn next_sequence(&mut self) -> String {
        self.sequence += 1;
        self.sequence.to_string()
    }

    fn start(&mut self, start: &StreamStart) -> String {
        json!({
            "event": "start",
            "sequenceNumber": self.next_sequence(),
            "start": {
                "accountSid": start.account_sid,
                "streamSid": start.stream_sid,
                "callSid": start.call_sid,
                "tracks": ["inbound"],
                "customParameters": start.custom_parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
            },
            "streamSid": start.stream_sid
        })
        .to_string()
    }

    fn media(&mut self, payload: &[u8]) -> String {
        use base64::Engine;
        self.chunk += 1;
        json!({
            "event": "media",
            "sequenceNumber": self.next_sequence(),
            "media": {
                "track": "inbound",
                "chunk": self.chunk.to_string(),
                "timestamp": self.started.elapsed().as_millis().to_string(),
                "payload": base64::engine::general_purpose::STANDARD.encode(payload)
            },
            "streamSid": self.stream_sid
        })
        .to_string()
    }

    fn mark(&mut self, name: &str) -> String {
        let sequence = self.next_sequence();
        json!({"event": "mark", "sequenceNumber": sequence, "streamSid": self.stream_sid, "mark": {"name": name}})
            .to_string()
    }

    fn dtmf(&mut self, digit: char) -> String {
        let sequence = self.next_sequence();
        json!({"event": "dtmf", "streamSid": self.stream_sid, "sequenceNumber": sequence,
               "dtmf": {"track": "inbound_track", "digit": digit.to_string()}})
        .to_string()
    }

    fn stop(&mut self, start: &StreamStart) -> String {
        let sequence = self.next_sequence();
        json!({"event": "stop", "sequenceNumber": sequence, "streamSid": self.stream_sid,
               "stop": {"accountSid": start.account_sid, "callSid": start.call_sid}})
        .to_string()
    }
}

async fn emit(events: &mpsc::Sender<PeerEvent>, event: PeerEvent) {
    // `Heard` frames and arrivals may be dropped when the reader falls behind (the clock must
    // not wait for it); the other events are rare and must arrive, in order.
    if matches!(event, PeerEvent::Heard { .. } | PeerEvent::MediaReceived { .. }) {
        let _ = events.try_send(event);
    } else {
        let _ = events.send(event).await;
    }
}

async fn run(
    socket: Socket,
    start: StreamStart,
    mut commands: mpsc::Receiver<PeerCommand>,
    events: mpsc::Sender<PeerEvent>,
) {
    let (mut sink, mut stream) = socket.split();
    let mut wire = Wire { stream_sid: start.stream_sid.clone(), sequence: 0, chunk: 0, started: Instant::now() };
    let connected = json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string();
    let start_message = wire.start(&start);
    if sink.send(Message::text(connected)).await.is_err() || sink.send(Message::text(start_message)).await.is_err() {
        let _ = events.send(PeerEvent::Closed).await;
        return;
    }
    let mut playback = PlaybackBuffer::default();
    let mut mouth: VecDeque<u8> = VecDeque::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    // Real phones do not catch up on missed frames; a late tick just plays late.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let now = Instant::now();
                let was_speaking = !mouth.is_empty();
                let frame: Vec<u8> = if was_speaking {
                    let take = mouth.len().min(CHUNK_SAMPLES);
                    let mut frame: Vec<u8> = mouth.drain(..take).collect();
                    frame.resize(CHUNK_SAMPLES, MULAW_SILENCE);
                    frame
                } else {
                    vec![MULAW_SILENCE; CHUNK_SAMPLES]
                };
                let media = wire.media(&frame);
                if sink.send(Message::text(media)).await.is_err() {
                    break;
                }
                if was_speaking && mouth.is_empty() {
                    emit(&events, PeerEvent::DoneSpeaking { at: now }).await;
                }
                let tick = playback.tick();
                for name in tick.marks {
                    let mark = wire.mark(&name);
                    if sink.send(Message::text(mark)).await.is_err() {
                        break;
                    }
                    emit(&events, PeerEvent::Mark { name, at: now }).await;
                }
                emit(&events, PeerEvent::Heard { frame: tick.frame, audible: tick.audible, at: now }).await;
            }
            command = commands.recv() => {
                let message = match command {
                    Some(PeerCommand::Speak(audio)) => { mouth.extend(audio); continue; }
                    Some(PeerCommand::Hush) => { mouth.clear(); continue; }
                    Some(PeerCommand::Dtmf(digit)) => Message::text(wire.dtmf(digit)),
                    Some(PeerCommand::Raw(text)) => Message::text(text),
                    Some(PeerCommand::RawBinary(bytes)) => Message::binary(bytes),
                    Some(PeerCommand::HangUp) | None => {
                        let stop = wire.stop(&start);
                        let _ = sink.send(Message::text(stop)).await;
                        let _ = sink.close().await;
                        break;
                    }
                    Some(PeerCommand::Drop) => break,
                };
                if sink.send(message).await.is_err() {
                    break;
                }
            }
            message = stream.next() => {
                let Some(Ok(message)) = message else { break };
                let received_at = Instant::now();
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => break,
                    _ => continue,
                };
                let Ok(value) = serde_json::from_str::<serde_json::Value>(text.as_str()) else { continue };
                match value.get("event").and_then(|e| e.as_str()) {
                    Some("media") => {
                        use base64::Engine;
                        emit(&events, PeerEvent::MediaReceived { at: received_at }).await;
                        if let Some(payload) = value.pointer("/media/payload").and_then(|p| p.as_str())
                            && let Ok(audio) = base64::engine::general_purpose::STANDARD.decode(payload)
                        {
                            playback.push_media(audio);
                        }
                    }
                    Some("mark") => {
                        if let Some(name) = value.pointer("/mark/name").and_then(|n| n.as_str()) {
                            playback.push_mark(name.to_owned());
                        }
                    }
                    Some("clear") => {
                        let now = Instant::now();
                        emit(&events, PeerEvent::Cleared { at: now }).await;
                        for name in playback.clear() {
                            let mark = wire.mark(&name);
                            if sink.send(Message::text(mark)).await.is_err() {
                                break;
                            }
                            emit(&events, PeerEvent::Mark { name, at: now }).await;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = events.send(PeerEvent::Closed).await;
}
