//! Twilio Media Streams messages (bidirectional `<Connect><Stream>`), as documented at
//! <https://www.twilio.com/docs/voice/media-streams/websocket-messages>: a pure codec, no
//! socket. Twilio sends `connected`, `start`, `media`, `dtmf`, `mark` and `stop`; we send
//! `media`, `mark` and `clear`.
//!
//! Parsing is lenient where Twilio's own format varies or may grow (numbers sent as strings,
//! unknown events, extra fields) and strict where a wrong value would corrupt the call (the
//! media format, the base64 payload). `MediaReorder` puts inbound chunks back in order and
//! fills gaps, because a WebSocket relay may deliver them late or not at all.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;

/// Samples (= µ-law bytes) in Twilio's 20 ms media chunk at 8 kHz.
pub const CHUNK_SAMPLES: usize = 160;

#[derive(Debug, Clone, PartialEq)]
pub struct StartMeta {
    pub stream_sid: String,
    pub account_sid: String,
    pub call_sid: String,
    pub tracks: Vec<String>,
    /// `<Parameter name=... value=...>` of the TwiML `<Stream>`.
    pub custom_parameters: BTreeMap<String, String>,
}

/// A message from Twilio.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Connected {
        protocol: String,
        version: String,
    },
    Start(StartMeta),
    /// µ-law audio; `chunk` counts from 1, `timestamp_ms` from the stream's start.
    Media {
        track: String,
        chunk: u64,
        timestamp_ms: u64,
        payload: Vec<u8>,
    },
    Dtmf {
        digit: char,
    },
    /// A mark we sent has been played (or dropped by a `clear`).
    Mark {
        name: String,
    },
    Stop {
        call_sid: String,
    },
    /// An event this codec does not know: ignored by the bridge, not an error, so a new
    /// Twilio message type does not end calls.
    Unknown {
        event: String,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamMessageError {
    #[error("not a JSON object: {0}")]
    NotJson(String),
    #[error("no \"event\" field")]
    NoEvent,
    #[error("{event}: missing or invalid {field}")]
    Field { event: &'static str, field: &'static str },
    #[error("unsupported media format {encoding} at {sample_rate} Hz x {channels} (expected audio/x-mulaw, 8000, 1)")]
    MediaFormat { encoding: String, sample_rate: u64, channels: u64 },
    #[error("media payload is not valid base64")]
    Payload,
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str()
}

/// Twilio sends sequence numbers, chunks and timestamps as decimal strings; accept numbers too.
fn number(value: &Value, path: &[&str]) -> Option<u64> {
    match path.iter().try_fold(value, |v, key| v.get(key))? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// A `media` message, read with borrowed fields: fifty of them a second per call, so they skip
/// the `Value` tree the rarer messages are read through. `Cow`: a JSON string with escapes
/// ("\/" in base64) cannot be borrowed as is.
#[derive(serde::Deserialize)]
struct MediaMessage<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow)]
    media: MediaFields<'a>,
}

#[derive(serde::Deserialize)]
struct MediaFields<'a> {
    #[serde(borrow, default)]
    track: Option<Cow<'a, str>>,
    #[serde(borrow)]
    chunk: NumberOrText<'a>,
    #[serde(borrow, default)]
    timestamp: Option<NumberOrText<'a>>,
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

/// Twilio sends numbers as decimal strings; numbers are accepted too.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum NumberOrText<'a> {
    Number(u64),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

impl NumberOrText<'_> {
    fn value(&self) -> Option<u64> {
        match self {
            NumberOrText::Number(n) => Some(*n),
            NumberOrText::Text(s) => s.parse().ok(),
        }
    }
}

impl Inbound {
    /// The fast path for `media`; `None` when the message is anything else (or malformed, for
    /// the general path to report).
    fn parse_media(message: &str) -> Option<Result<Inbound, StreamMessageError>> {
        let media: MediaMessage = serde_json::from_str(message).ok()?;
        if media.event != "media" {
            return None;
        }
        let chunk = media.media.chunk.value()?;
        Some(match BASE64.decode(media.media.payload.as_bytes()) {
            Ok(payload) => Ok(Inbound::Media {
                track: media.media.track.map_or_else(|| "inbound".to_owned(), Cow::into_owned),
                chunk,
                timestamp_ms: media.media.timestamp.and_then(|t| t.value()).unwrap_or(0),
                payload,
            }),
            Err(_) => Err(StreamMessageError::Payload),
        })
    }

    pub fn parse(message: &str) -> Result<Inbound, StreamMessageError> {
        if let Some(media) = Inbound::parse_media(message) {
            return media;
        }
        let value: Value = serde_json::from_str(message).map_err(|e| StreamMessageError::NotJson(e.to_string()))?;
        if !value.is_object() {
            return Err(StreamMessageError::NotJson("not an object".into()));
        }
        let event = text(&value, &["event"]).ok_or(StreamMessageError::NoEvent)?;
        let field = |event: &'static str, field: &'static str| StreamMessageError::Field { event, field };
        Ok(match event {
            "connected" => Inbound::Connected {
                protocol: text(&value, &["protocol"]).unwrap_or_default().to_owned(),
                version: text(&value, &["version"]).unwrap_or_default().to_owned(),
            },
            "start" => {
                let start = value.get("start").ok_or(field("start", "start"))?;
                let stream_sid = text(start, &["streamSid"])
                    .or_else(|| text(&value, &["streamSid"]))
                    .ok_or(field("start", "streamSid"))?;
                if let Some(format) = start.get("mediaFormat") {
                    let encoding = text(format, &["encoding"]).unwrap_or_default();
                    let sample_rate = number(format, &["sampleRate"]).unwrap_or(0);
                    let channels = number(format, &["channels"]).unwrap_or(1);
                    if encoding != "audio/x-mulaw" || sample_rate != 8000 || channels != 1 {
                        return Err(StreamMessageError::MediaFormat {
                            encoding: encoding.to_owned(),
                            sample_rate,
                            channels,
                        });
                    }
                }
                let custom_parameters = start
                    .get("customParameters")
                    .and_then(Value::as_object)
                    .map(|params| {
                        params.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect()
                    })
                    .unwrap_or_default();
                let tracks = start
                    .get("tracks")
                    .and_then(Value::as_array)
                    .map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_else(|| vec!["inbound".to_owned()]);
                Inbound::Start(StartMeta {
                    stream_sid: stream_sid.to_owned(),
                    account_sid: text(start, &["accountSid"]).unwrap_or_default().to_owned(),
                    call_sid: text(start, &["callSid"]).unwrap_or_default().to_owned(),
                    tracks,
                    custom_parameters,
                })
            }
            "media" => {
                let payload = text(&value, &["media", "payload"]).ok_or(field("media", "media.payload"))?;
                Inbound::Media {
                    track: text(&value, &["media", "track"]).unwrap_or("inbound").to_owned(),
                    chunk: number(&value, &["media", "chunk"]).ok_or(field("media", "media.chunk"))?,
                    timestamp_ms: number(&value, &["media", "timestamp"]).unwrap_or(0),
                    payload: BASE64.decode(payload).map_err(|_| StreamMessageError::Payload)?,
                }
            }
            "dtmf" => {
                let digit = text(&value, &["dtmf", "digit"]).ok_or(field("dtmf", "dtmf.digit"))?;
                let mut chars = digit.chars();
                match (chars.next(), chars.next()) {
                    (Some(d), None) if d.is_ascii_digit() || matches!(d, '*' | '#' | 'A'..='D') => {
                        Inbound::Dtmf { digit: d }
                    }
                    _ => return Err(field("dtmf", "dtmf.digit")),
                }
            }
            "mark" => {
                Inbound::Mark { name: text(&value, &["mark", "name"]).ok_or(field("mark", "mark.name"))?.to_owned() }
            }
            "stop" => Inbound::Stop { call_sid: text(&value, &["stop", "callSid"]).unwrap_or_default().to_owned() },
            other => Inbound::Unknown { event: other.to_owned() },
        })
    }
}

/// A message to Twilio.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound<'a> {
    /// µ-law audio to play, any whole number of samples (we send 20 ms chunks).
    Media { payload: &'a [u8] },
    /// Ask to be told (with a `mark` back) when everything queued before it has played.
    Mark { name: &'a str },
    /// Drop everything queued (barge-in); pending marks come back at once.
    Clear,
}

impl Outbound<'_> {
    pub fn to_json(&self, stream_sid: &str) -> String {
        let mut out = String::new();
        self.write_json(&json_string(stream_sid), &mut out);
        out
    }

    /// Appends the message to `out`, written directly rather than through a `Value` tree (a
    /// media message goes out 50 times a second per call). `stream_sid_json` is the stream's
    /// SID already as a JSON string literal (`json_string`), quoted once per call.
    pub fn write_json(&self, stream_sid_json: &str, out: &mut String) {
        out.push_str(r#"{"event":""#);
        match self {
            Outbound::Media { payload } => {
                out.push_str(r#"media","streamSid":"#);
                out.push_str(stream_sid_json);
                out.push_str(r#","media":{"payload":""#);
                BASE64.encode_string(payload, out);
                out.push_str(r#""}}"#);
            }
            Outbound::Mark { name } => {
                out.push_str(r#"mark","streamSid":"#);
                out.push_str(stream_sid_json);
                out.push_str(r#","mark":{"name":"#);
                out.push_str(&json_string(name));
                out.push_str("}}");
            }
            Outbound::Clear => {
                out.push_str(r#"clear","streamSid":"#);
                out.push_str(stream_sid_json);
                out.push('}');
            }
        }
    }
}

/// `text` as a JSON string literal, quotes included.
pub fn json_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// Puts inbound media chunks back in order. A chunk that arrives after its turn has passed is
/// dropped; a chunk that never arrives is replaced by silence once `window` later chunks have
/// arrived, so a lost packet costs 20 ms of silence rather than a stalled call. Chunks more
/// than [`FAR_AHEAD`] ahead are held apart: more than `window` of them with no chunk near the
/// count in between means the stream jumped (a reconnect) and the count restarts there; a
/// chunk near the count means they were stray, and they are dropped. One garbage chunk number
/// thus neither makes every later chunk "late" nor floods the call with silence.
#[derive(Debug)]
pub struct MediaReorder {
    next: u64,
    window: usize,
    pending: BTreeMap<u64, Vec<u8>>,
    /// Chunks far ahead of `next`, until they prove to be the stream or stray.
    ahead: BTreeMap<u64, Vec<u8>>,
    /// Chunks replaced by silence so far.
    pub lost: u64,
    /// Chunks that arrived too late or twice, or far ahead of a stream that went on, and were
    /// dropped.
    pub late: u64,
}

/// Chunks ahead of the next expected one beyond which a chunk is not just out of order (1 s).
pub const FAR_AHEAD: u64 = 50;

/// µ-law silence (the code for 0).
pub const MULAW_SILENCE: u8 = 0xFF;

impl MediaReorder {
    pub fn new(window: usize) -> Self {
        MediaReorder {
            next: 1,
            window: window.max(1),
            pending: BTreeMap::new(),
            ahead: BTreeMap::new(),
            lost: 0,
            late: 0,
        }
    }

    /// Takes one chunk; `pop` then gives back every chunk now ready, in order.
    pub fn push(&mut self, chunk: u64, payload: Vec<u8>) {
        if chunk < self.next || self.pending.contains_key(&chunk) || self.ahead.contains_key(&chunk) {
            self.late += 1;
            return;
        }
        if chunk > self.next + FAR_AHEAD {
            self.ahead.insert(chunk, payload);
            // A stream that starts (or jumps) far ahead, e.g. after a reconnect, restarts the
            // count instead of emitting seconds of silence.
            if self.ahead.len() > self.window {
                self.pending = std::mem::take(&mut self.ahead);
                self.next = self.pending.keys().next().copied().unwrap_or(chunk);
            }
            return;
        }
        // The stream near the count goes on: whatever came far ahead of it was stray.
        self.late += self.ahead.len() as u64;
        self.ahead.clear();
        self.pending.insert(chunk, payload);
    }

    /// The next chunk in order, if it is here (moved out, not copied), or silence in place of
    /// a missing one once `window` later chunks wait behind it.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        if let Some(payload) = self.pending.remove(&self.next) {
            self.next += 1;
            Some(payload)
        } else if self.pending.len() > self.window {
            self.lost += 1;
            self.next += 1;
            Some(vec![MULAW_SILENCE; CHUNK_SAMPLES])
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Examples from Twilio's documentation page (ids shortened).
    const START: &str = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC123","streamSid":"MZ18ad","callSid":"CA42","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"FirstName":"Jane","callToken":"tok"}},"streamSid":"MZ18ad"}"#;
    const MEDIA: &str = r#"{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"no+JhoaJjpzSHxAKBgYJDhtEopGKh4aIjZm7JhILBwYIDBc1qZaLiIaHi5SsLxUNCAYHChEn"},"streamSid":"MZ18ad"}"#;

    #[test]
    fn parses_twilio_documented_messages() {
        assert_eq!(
            Inbound::parse(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#).unwrap(),
            Inbound::Connected { protocol: "Call".into(), version: "1.0.0".into() }
        );
        let Inbound::Start(start) = Inbound::parse(START).unwrap() else { panic!("not start") };
        assert_eq!((start.stream_sid.as_str(), start.call_sid.as_str()), ("MZ18ad", "CA42"));
        assert_eq!(start.custom_parameters.get("callToken").map(String::as_str), Some("tok"));
        let Inbound::Media { chunk, timestamp_ms, payload, track } = Inbound::parse(MEDIA).unwrap() else {
            panic!("not media")
        };
        assert_eq!((chunk, timestamp_ms, track.as_str(), payload.len()), (1, 5, "inbound", 54));
        assert_eq!(
            Inbound::parse(
                r#"{"event":"dtmf","streamSid":"MZ","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}"#
            )
            .unwrap(),
            Inbound::Dtmf { digit: '1' }
        );
        assert_eq!(
            Inbound::parse(r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ","mark":{"name":"line-3"}}"#)
                .unwrap(),
            Inbound::Mark { name: "line-3".into() }
        );
        assert_eq!(
            Inbound::parse(
                r#"{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC","callSid":"CA42"},"streamSid":"MZ"}"#
            )
            .unwrap(),
            Inbound::Stop { call_sid: "CA42".into() }
        );
        assert_eq!(
            Inbound::parse(r#"{"event":"futureThing","x":1}"#).unwrap(),
            Inbound::Unknown { event: "futureThing".into() }
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "",
            "not json",
            "[1,2]",
            "{}",
            r#"{"event":5}"#,
            r#"{"event":"media"}"#,
            r#"{"event":"media","media":{"chunk":"1","payload":"***"}}"#,
            r#"{"event":"media","media":{"payload":"AA=="}}"#,
            r#"{"event":"dtmf","dtmf":{"digit":"12"}}"#,
            r#"{"event":"start"}"#,
            r#"{"event":"start","start":{"streamSid":"MZ","mediaFormat":{"encoding":"audio/l16","sampleRate":16000,"channels":1}}}"#,
        ] {
            assert!(Inbound::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn encodes_outbound_messages_as_twilio_documents_them() {
        let media: Value = serde_json::from_str(&Outbound::Media { payload: &[0xFF, 0x7F] }.to_json("MZ1")).unwrap();
        assert_eq!(media, json!({"event": "media", "streamSid": "MZ1", "media": {"payload": "/38="}}));
        let mark: Value = serde_json::from_str(&Outbound::Mark { name: "l1" }.to_json("MZ1")).unwrap();
        assert_eq!(mark, json!({"event": "mark", "streamSid": "MZ1", "mark": {"name": "l1"}}));
        let clear: Value = serde_json::from_str(&Outbound::Clear.to_json("MZ1")).unwrap();
        assert_eq!(clear, json!({"event": "clear", "streamSid": "MZ1"}));
        // Whatever a SID or a mark name holds, the message stays valid JSON.
        let odd: Value = serde_json::from_str(&Outbound::Mark { name: "a\"b\\" }.to_json("M\"Z")).unwrap();
        assert_eq!(odd, json!({"event": "mark", "streamSid": "M\"Z", "mark": {"name": "a\"b\\"}}));
    }

    #[test]
    fn media_with_escaped_or_numeric_fields_parses_like_twilios_own() {
        let escaped = r#"{"event":"media","media":{"track":"inbound","chunk":7,"timestamp":"140","payload":"\/38="},"streamSid":"MZ"}"#;
        assert_eq!(
            Inbound::parse(escaped).unwrap(),
            Inbound::Media { track: "inbound".into(), chunk: 7, timestamp_ms: 140, payload: vec![0xFF, 0x7F] }
        );
        let bare = r#"{"event":"media","media":{"chunk":"2","payload":"/38="}}"#;
        assert!(matches!(Inbound::parse(bare).unwrap(), Inbound::Media { chunk: 2, .. }));
    }

    fn run(reorder: &mut MediaReorder, chunks: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        for &c in chunks {
            reorder.push(c, vec![c as u8; CHUNK_SAMPLES]);
            while let Some(p) = reorder.pop() {
                out.push(p[0]);
            }
        }
        out
    }

    #[test]
    fn reorders_late_chunks_and_fills_lost_ones_with_silence() {
        let mut reorder = MediaReorder::new(2);
        assert_eq!(run(&mut reorder, &[1, 3, 2, 4]), vec![1, 2, 3, 4]);
        // 5 is lost: after two later chunks are waiting... and a third, silence stands in.
        assert_eq!(run(&mut reorder, &[6, 7, 8]), vec![MULAW_SILENCE, 6, 7, 8]);
        assert_eq!(reorder.lost, 1);
        // 5 turns up after its slot was filled; a duplicate of 8 too: both dropped.
        assert_eq!(run(&mut reorder, &[5, 8, 9]), vec![9]);
        assert_eq!(reorder.late, 2);
    }

    #[test]
    fn stray_chunks_far_ahead_are_dropped_but_a_stream_that_jumps_is_followed() {
        let mut reorder = MediaReorder::new(2);
        // One garbage chunk number mid-stream, then a few: the stream goes on untouched.
        assert_eq!(run(&mut reorder, &[1, 2, 999_999, 3, 4]), vec![1, 2, 3, 4]);
        assert_eq!(run(&mut reorder, &[1000, 1001, 5, 1002, 1003, 6]), vec![5, 6]);
        assert_eq!((reorder.lost, reorder.late), (0, 5));
        // A chunk out of order within the window is still put back in place.
        assert_eq!(run(&mut reorder, &[8, 7]), vec![7, 8]);
        // The stream restarts 5 000 chunks on (more than `window` chunks there, none near 9).
        let jumped: Vec<u64> = (5000..5005).collect();
        assert_eq!(run(&mut reorder, &jumped), jumped.iter().map(|&c| c as u8).collect::<Vec<_>>());
        assert_eq!(reorder.lost, 0);
    }
}
