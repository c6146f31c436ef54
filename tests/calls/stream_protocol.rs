//! The Media Streams protocol under stress, end to end: a synthetic caller rings one of our
//! numbers through Twilio's doors (`TwilioSide::ring`) and talks over the bot, coughs, keys
//! digits, drops the socket, and sends garbage; the gateway must clear fast, ignore noise,
//! take keys as answers, and always end the call with its record.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use callcenter::media::g711;
use callcenter::telephony::simulator::peer::{PeerCommand, PeerEvent};
use callcenter::telephony::simulator::twilio_side::InboundCall;
use callcenter::telephony::twilio::stream::{CHUNK_SAMPLES, MULAW_SILENCE};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::common::TestApp;
use crate::{caller_speech, twilio_app, twilio_side};

/// Our number the tests' callers dial, and who they are.
const OUR_NUMBER: &str = "+14155550199";
const CALLER: &str = "+14155550100";

/// About 20 s of speech: long enough to be interrupted, or to hear noise under, mid-line.
const LONG_GREETING: &str = "Hello, and thank you for calling Acme Home Services. \
    We are calling about your yearly heating system check. \
    Our technicians will be in your neighbourhood next week, and a few appointments are still open. \
    The visit takes about an hour, and there is no charge for members.";

/// Generous bounds for a debug build on two shared cores.
const FIRST_AUDIO: Duration = Duration::from_secs(60);
const CALL_END: Duration = Duration::from_secs(60);

/// One 20 ms frame.
const FRAME: Duration = Duration::from_millis(20);

/// A synthetic caller on an inbound call, keeping count of what it heard.
struct Caller {
    call: InboundCall,
    /// Frames of the gateway's audio heard so far.
    audible_frames: usize,
    /// Frames ticked so far: the peer sends its media chunk `n` on tick `n`.
    ticks: u64,
    marks: Vec<String>,
    cleared: Vec<Instant>,
    closed: bool,
}

impl Caller {
    async fn ring(app: &TestApp, call_sid: &str) -> Caller {
        let call = twilio_side(app).ring(&app.client, CALLER, OUR_NUMBER, call_sid).await.expect("the call connects");
        Caller { call, audible_frames: 0, ticks: 0, marks: Vec::new(), cleared: Vec::new(), closed: false }
    }

    async fn send(&self, command: PeerCommand) {
        self.call.peer.commands.send(command).await.expect("the peer is running");
    }

    /// Reads events until `check` returns a value; panics naming `what` after `timeout` or if
    /// the stream closes first (unless `check` accepts `Closed`).
    async fn until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&PeerEvent, &Caller) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let event = tokio::time::timeout_at(deadline, self.call.peer.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out after {timeout:?} waiting for {what}"))
                .unwrap_or(PeerEvent::Closed);
            match &event {
                PeerEvent::Heard { audible, .. } => {
                    self.ticks += 1;
                    self.audible_frames += usize::from(*audible);
                }
                PeerEvent::Mark { name, .. } => self.marks.push(name.clone()),
                PeerEvent::Cleared { at } => self.cleared.push(*at),
                PeerEvent::Closed => self.closed = true,
                PeerEvent::DoneSpeaking { .. } | PeerEvent::MediaReceived { .. } => {}
            }
            if let Some(value) = check(&event, self) {
                return value;
            }
            assert!(!self.closed, "the stream closed while waiting for {what}");
        }
    }

    /// Waits until the gateway's audio has been heard for `duration` in all.
    async fn heard_for(&mut self, duration: Duration, what: &str) {
        let frames = (duration.as_millis() / FRAME.as_millis()) as usize;
        self.until(what, FIRST_AUDIO, |_, c| (c.audible_frames >= frames).then_some(())).await;
    }

    /// Waits until `n` marks have come back (line `n` played to its end, or was cleared).
    async fn marks_back(&mut self, n: usize, what: &str) {
        self.until(what, CALL_END, |_, c| (c.marks.len() >= n).then_some(())).await;
    }

    /// Waits for the gateway to end the call (it closes the stream after its last line).
    async fn hung_up_on(&mut self) {
        self.until("the gateway to hang up", CALL_END, |e, _| matches!(e, PeerEvent::Closed).then_some(())).await;
    }
}

/// The bot's lines in the transcript, in order.
fn bot_turns(transcript: &Value) -> Vec<&Value> {
    transcript["turns"].as_array().expect("turns").iter().filter(|t| t["speaker"] == "bot").collect()
}

/// 8 kHz PCM as µ-law.
fn mulaw(pcm: &[i16]) -> Vec<u8> {
    let mut out = vec![0u8; pcm.len()];
    g711::encode_ulaw(pcm, &mut out);
    out
}

/// Seeded uniform white noise at 8 kHz with the given RMS (full scale 1.0).
fn white_noise(seed: u64, ms: usize, rms: f32) -> Vec<i16> {
    // xorshift64*: reproducible without a dependency on the generator's crate version.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let peak = rms * 3f32.sqrt();
    (0..ms * 8)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let unit = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f32 / (1u64 << 53) as f32;
            ((unit * 2.0 - 1.0) * peak * 32767.0) as i16
        })
        .collect()
}

/// A cough-like burst at 8 kHz (as `tests/speech_vad.rs` makes it): noise low-passed at
/// ~800 Hz, 5 ms attack, 40 ms decay, peak about -10 dBFS.
fn cough(seed: u64, ms: usize) -> Vec<i16> {
    let noise = white_noise(seed, ms, 0.5);
    let alpha = 1.0 - (-2.0 * std::f32::consts::PI * 800.0 / 8000.0).exp();
    let mut low = 0.0f32;
    noise
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            low += alpha * (f32::from(n) - low);
            let t = i as f32 / 8000.0;
            let envelope = (t / 0.005).min(1.0) * (-t / 0.040).exp();
            (low * envelope * 2.0).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

async fn long_greeting_number(app: &TestApp) {
    app.number_running(
        OUR_NUMBER,
        "Long greeting",
        json!([
            {"type": "greeting", "content": LONG_GREETING},
            {"type": "question", "content": "Would you like to book a visit?"},
            {"type": "closing", "content": "Thank you. Goodbye."}
        ]),
    )
    .await;
}

/// Barge-in: 1.5 s into a long line the caller talks; `clear` follows within
/// `CLEAR_WITHIN` of the caller's first voiced frame, the bot's audio stops, and the line is
/// stored as interrupted.
///
/// Latency is measured from the command that queues the caller's (leading-silence-trimmed)
/// speech, at most one 20 ms tick before its first voiced frame goes out, to the `clear`'s
/// arrival, printed by `cargo test --test calls caller_speech_over -- --nocapture`. The
/// endpointer needs `barge_in_ms` (200 ms) of frames scored as speech before it interrupts, so
/// that a cough or an "oh" does not (next test); the rest is Silero rising from digital
/// silence, its 32 ms chunks at 8 kHz, and tick alignment. Measured (debug build, 2 shared
/// cores, 2026-11-26): 260, 279, 280 ms run alone, 331 ms with other model tests running
/// (with the earlier 300 ms `barge_in_ms`: 379-400 ms). The target is 300 ms; the bound
/// asserted leaves 50 ms for a loaded machine and still fails at the old setting.
#[tokio::test]
async fn caller_speech_over_a_long_line_clears_it_and_the_line_is_stored_as_interrupted() {
    const CLEAR_WITHIN: Duration = Duration::from_millis(350);
    let app = twilio_app().await;
    long_greeting_number(&app).await;
    let interruption = caller_speech(&app, "Sorry, who is this?").await;
    let talking_for = FRAME * interruption.len().div_ceil(CHUNK_SAMPLES) as u32;

    let mut caller = Caller::ring(&app, "CA0000000000000000000000000000b001").await;
    caller.heard_for(Duration::from_millis(1500), "1.5 s of the greeting").await;
    assert!(caller.cleared.is_empty() && caller.marks.is_empty(), "the greeting ended before the caller spoke");
    // The clip starts with a voiced frame; the peer sends it on its next tick.
    let spoke_at = Instant::now();
    caller.send(PeerCommand::Speak(interruption)).await;
    let cleared_at = caller
        .until("clear", Duration::from_secs(10), |e, _| match e {
            PeerEvent::Cleared { at } => Some(*at),
            _ => None,
        })
        .await;
    let latency = cleared_at - spoke_at;
    eprintln!("barge-in: clear {} ms after the caller's first voiced frame was queued", latency.as_millis());
    assert!(latency <= CLEAR_WITHIN, "clear came {} ms after the caller started talking", latency.as_millis());
    assert!(latency < talking_for, "clear came after the caller had finished talking");

    // Nothing of the bot's is heard after the clear (one frame of grace for a tick in flight)
    // until 200 ms after the caller's last voiced frame: the bot only speaks again once the
    // caller's turn has ended (400 ms of silence) and been transcribed.
    let mut audible_after_clear = Vec::new();
    let done_at = caller
        .until("the caller to finish talking", Duration::from_secs(10), |e, _| match e {
            PeerEvent::Heard { audible: true, at, .. } if *at > cleared_at + FRAME => {
                audible_after_clear.push(*at - cleared_at);
                None
            }
            PeerEvent::DoneSpeaking { at } => Some(*at),
            _ => None,
        })
        .await;
    let quiet_until = done_at + Duration::from_millis(200);
    caller
        .until("200 ms after the caller finished", Duration::from_secs(5), |e, _| match e {
            PeerEvent::Heard { at, .. } if *at > quiet_until => Some(()),
            PeerEvent::Heard { audible: true, at, .. } => {
                audible_after_clear.push(*at - cleared_at);
                None
            }
            _ => None,
        })
        .await;
    assert!(
        audible_after_clear.is_empty(),
        "the bot's audio went on after the clear (ms after it: {:?})",
        audible_after_clear.iter().map(Duration::as_millis).collect::<Vec<_>>()
    );
    // The caller's question is answered by going on with the line; then the caller hangs up.
    let resumed_from = caller.audible_frames;
    caller
        .until("the bot to speak again", Duration::from_secs(30), |_, c| {
            (c.audible_frames >= resumed_from + 25).then_some(())
        })
        .await;
    caller.send(PeerCommand::HangUp).await;

    let record = app.finished_call(&caller.call.call_id, CALL_END).await;
    let transcript = app.transcript(&caller.call.call_id).await;
    let bot = bot_turns(&transcript);
    let greeting = bot.first().expect("the greeting is in the transcript");
    assert_eq!(greeting["text"], LONG_GREETING, "{transcript:#}");
    assert_eq!(greeting["interrupted"], true, "{transcript:#}");
    // Cut by the barge-in about 2 s in, not by the hang-up much later.
    let said_ms = greeting["endMs"].as_i64().unwrap() - greeting["startMs"].as_i64().unwrap();
    assert!(said_ms < 4_000, "the interrupted greeting lasted {said_ms} ms: {transcript:#}");
    assert!(
        transcript["turns"].as_array().unwrap().iter().any(|t| t["speaker"] == "caller"),
        "the interruption is a caller turn: {transcript:#}"
    );
    assert!(matches!(record["status"].as_str(), Some("completed" | "failed")), "{record}");
}

/// A 150 ms burst of noise, a cough, or a short voiced sound during a line is not a barge-in:
/// Silero does not score noise as speech (tests/speech_vad.rs), and the endpointer wants
/// `barge_in_ms` (300 ms) of speech while the bot talks. The line plays to its mark with no
/// `clear`.
#[tokio::test]
async fn short_noise_bursts_during_a_line_do_not_clear_it() {
    let app = twilio_app().await;
    long_greeting_number(&app).await;
    // Silero scores the noises low whatever the endpointer's settings; the voiced "oh", cut
    // to 150 ms, scores as speech, and only `barge_in_ms` keeps it from interrupting.
    let mut oh = caller_speech(&app, "Oh.").await;
    oh.truncate(150 * 8);
    let bursts = [
        ("white noise at -20 dBFS", mulaw(&white_noise(1, 150, 0.1))),
        ("a cough-like burst", mulaw(&cough(2, 150))),
        ("white noise at -10 dBFS", mulaw(&white_noise(3, 150, 0.3))),
        ("150 ms of a voiced \"oh\"", oh),
    ];
    let mut caller = Caller::ring(&app, "CA0000000000000000000000000000b002").await;
    let mut sent = "nothing";
    for (at_s, (what, burst)) in [1.0f32, 2.5, 4.0, 5.5].into_iter().zip(bursts) {
        caller.heard_for(Duration::from_secs_f32(at_s), "the greeting").await;
        assert!(caller.cleared.is_empty(), "{sent} cleared the greeting");
        assert!(caller.marks.is_empty(), "the greeting ended before {what}");
        caller.send(PeerCommand::Speak(burst)).await;
        sent = what;
    }
    caller.marks_back(1, "the greeting's mark").await;
    assert!(caller.cleared.is_empty(), "{sent} cleared the greeting");
    // The greeting played whole: about its synthesized length.
    let greeting_ms = caller.audible_frames * 20;
    caller.send(PeerCommand::HangUp).await;

    app.finished_call(&caller.call.call_id, CALL_END).await;
    let transcript = app.transcript(&caller.call.call_id).await;
    let greeting = bot_turns(&transcript).into_iter().next().expect("the greeting");
    assert_eq!(greeting["text"], LONG_GREETING, "{transcript:#}");
    assert!(greeting.get("interrupted").is_none_or(|i| i == false), "{transcript:#}");
    assert!(greeting_ms > 8_000, "the greeting was heard for only {greeting_ms} ms");
}

/// A caller who only presses keys: 1 after the question is yes (successful), 2 pressed while
/// the question plays interrupts it and is no (rejected). The key is in the call's notes.
#[tokio::test]
async fn keys_alone_answer_the_question() {
    let app = twilio_app().await;
    app.number_running(
        OUR_NUMBER,
        "Catalogue",
        json!([
            {"type": "greeting", "content": "Hello, this is Acme."},
            {"type": "question", "content": "Would you like our new catalogue? Press 1 for yes, or 2 for no."},
            {"type": "response", "content": "Great, it is on its way."},
            {"type": "closing", "content": "Thank you. Goodbye."}
        ]),
    )
    .await;

    let after_question = async {
        let mut caller = Caller::ring(&app, "CA0000000000000000000000000000d001").await;
        caller.marks_back(2, "the question to play").await;
        caller.send(PeerCommand::Dtmf('1')).await;
        caller.hung_up_on().await;
        assert!(caller.cleared.is_empty(), "nothing was interrupted");
        caller.call.call_id
    };
    let during_question = async {
        let mut caller = Caller::ring(&app, "CA0000000000000000000000000000d002").await;
        caller.marks_back(1, "the greeting to play").await;
        let question_from = caller.audible_frames;
        caller
            .until("half a second of the question", FIRST_AUDIO, |_, c| {
                (c.audible_frames >= question_from + 25).then_some(())
            })
            .await;
        caller.send(PeerCommand::Dtmf('2')).await;
        caller
            .until("clear", Duration::from_secs(5), |e, _| matches!(e, PeerEvent::Cleared { .. }).then_some(()))
            .await;
        caller.hung_up_on().await;
        caller.call.call_id
    };
    let (yes, no) = tokio::join!(after_question, during_question);

    let yes_call = app.finished_call(&yes, CALL_END).await;
    let yes_transcript = app.transcript(&yes).await;
    assert_eq!(
        (yes_call["status"].as_str(), yes_call["outcome"].as_str()),
        (Some("completed"), Some("successful")),
        "{yes_call}"
    );
    assert!(yes_call["notes"].as_str().unwrap().contains("pressed 1"), "{yes_call}");
    let said: Vec<&str> = bot_turns(&yes_transcript).iter().filter_map(|t| t["text"].as_str()).collect();
    assert!(said.contains(&"Great, it is on its way."), "{said:?}");

    let no_call = app.finished_call(&no, CALL_END).await;
    let no_transcript = app.transcript(&no).await;
    assert_eq!(
        (no_call["status"].as_str(), no_call["outcome"].as_str()),
        (Some("completed"), Some("rejected")),
        "{no_call}"
    );
    assert!(no_call["notes"].as_str().unwrap().contains("pressed 2"), "{no_call}");
    let bot = bot_turns(&no_transcript);
    let question = bot.iter().find(|t| t["text"].as_str().is_some_and(|t| t.starts_with("Would you like"))).unwrap();
    assert_eq!(question["interrupted"], true, "{no_transcript:#}");
    assert!(!bot.iter().any(|t| t["text"] == "Great, it is on its way."), "{no_transcript:#}");
}

/// The socket drops mid-line without `stop`: the call still ends with an outcome and notes,
/// the line said so far in its transcript, a playable recording, and its slot freed.
#[tokio::test]
async fn a_dropped_stream_still_ends_the_call_with_transcript_and_recording() {
    let app = twilio_app().await;
    long_greeting_number(&app).await;
    let mut caller = Caller::ring(&app, "CA0000000000000000000000000000e001").await;
    caller.heard_for(Duration::from_secs(2), "2 s of the greeting").await;
    caller.send(PeerCommand::Drop).await;

    let record = app.finished_call(&caller.call.call_id, CALL_END).await;
    // A lost connection is a failed call (the dialogue engine's rule), and the notes say so.
    assert_eq!((record["status"].as_str(), record["outcome"].as_str()), (Some("failed"), Some("failed")), "{record}");
    assert!(record["notes"].as_str().is_some_and(|n| n.contains("Connection lost")), "{record}");
    let transcript = app.transcript(&caller.call.call_id).await;
    let greeting = bot_turns(&transcript).into_iter().next().expect("the greeting said so far");
    assert_eq!((greeting["text"].as_str(), greeting["interrupted"].as_bool()), (Some(LONG_GREETING), Some(true)));

    let audio = app.recording(&caller.call.call_id).await;
    assert_eq!((audio.sample_rate, audio.channels), (8000, 2));
    assert!(audio.duration_secs() >= 1.5, "the recording lasts {:.2} s", audio.duration_secs());
    // Right channel: the bot, who was talking until the drop.
    let bot_peak = audio.samples.iter().skip(1).step_by(2).fold(0f32, |m, s| m.max(s.abs()));
    assert!(bot_peak > 0.05, "the bot's channel is silent (peak {bot_peak})");
    crate::common::eventually(Duration::from_secs(5), "the call's slot to be freed", || async {
        (app.state.calls.active() == 0).then_some(())
    })
    .await;
}

/// Garbage and out-of-order stream messages mid-call are ignored: the caller then answers
/// "yes" by voice and the call completes successful.
#[tokio::test]
async fn garbage_and_out_of_order_messages_mid_call_do_not_derail_it() {
    let app = twilio_app().await;
    app.number_running(
        OUR_NUMBER,
        "Plan",
        json!([
            {"type": "greeting", "content": "Hello, this is Acme."},
            {"type": "question", "content": "Would you like to hear about our new plan?"},
            {"type": "response", "content": "Great, a colleague will email you the details."},
            {"type": "closing", "content": "Thank you for your time. Goodbye."}
        ]),
    )
    .await;
    let yes = caller_speech(&app, "Yes, I am interested.").await;
    let mut caller = Caller::ring(&app, "CA0000000000000000000000000000f001").await;
    caller.heard_for(Duration::from_millis(500), "the greeting").await;

    let sid = "MZ0000000000000000000000000000f001";
    let silence = BASE64.encode([MULAW_SILENCE; CHUNK_SAMPLES]);
    let media = |chunk: u64, payload: &str| {
        json!({"event": "media", "sequenceNumber": "0", "streamSid": sid,
               "media": {"track": "inbound", "chunk": chunk.to_string(), "timestamp": "0", "payload": payload}})
        .to_string()
    };
    let garbage = [
        "this is not JSON".to_owned(),
        String::new(),
        "[1,2,3]".to_owned(),
        "{}".to_owned(),
        json!({"event": 42}).to_string(),
        json!({"event": "hologram", "streamSid": sid, "hologram": {"x": 1}}).to_string(),
        json!({"event": "media", "streamSid": sid, "media": {"chunk": "5", "payload": "%%% not base64 %%%"}})
            .to_string(),
        json!({"event": "media", "streamSid": sid, "media": {"chunk": "6"}}).to_string(),
        json!({"event": "media", "streamSid": sid, "media": {"chunk": "seven", "payload": silence}}).to_string(),
        json!({"event": "dtmf", "streamSid": sid, "dtmf": {"digit": "12"}}).to_string(),
        json!({"event": "mark", "streamSid": sid, "mark": {"name": "line-99"}}).to_string(),
        json!({"event": "mark", "streamSid": sid, "mark": {}}).to_string(),
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string(),
        // A chunk long past (the peer sent chunk 1 at the start): late, dropped.
        media(1, &silence),
        // A chunk number far ahead: before MediaReorder held such chunks apart, this one
        // moved the count there and every chunk of the caller's after it was "late": the
        // call went deaf and ended `unsuccessful`.
        media(999_999, &silence),
    ];
    for message in garbage {
        caller.send(PeerCommand::Raw(message)).await;
    }
    caller.send(PeerCommand::RawBinary(vec![0x00, 0xFF, 0x13, 0x37])).await;
    // Two chunks a little ahead of the peer's own count, swapped: the reorder window puts
    // them back in order, and the peer's own chunks with those numbers become duplicates.
    let ahead = caller.ticks + 20;
    caller.send(PeerCommand::Raw(media(ahead + 1, &silence))).await;
    caller.send(PeerCommand::Raw(media(ahead, &silence))).await;

    caller.marks_back(2, "the question to play").await;
    caller.send(PeerCommand::Speak(yes)).await;
    caller.hung_up_on().await;

    let record = app.finished_call(&caller.call.call_id, CALL_END).await;
    let transcript = app.transcript(&caller.call.call_id).await;
    assert_eq!(
        (record["status"].as_str(), record["outcome"].as_str()),
        (Some("completed"), Some("successful")),
        "{record}\n{transcript:#}"
    );
}
