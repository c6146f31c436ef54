//! One task per call: it owns the media stream (Twilio Media Streams over a WebSocket), the
//! media stages, the dialogue and the recorder, and at the end stores what happened.
//!
//! Inbound, every 20 ms µ-law frame is decoded to 8 kHz PCM, written to the recorder's left
//! channel and scored by Silero VAD (at 8 kHz: no per-frame resampling); the endpointer turns
//! the scores into caller turns, whose audio is resampled to 16 kHz once and transcribed on
//! the STT pool. Outbound, each line the dialogue says is synthesized sentence by sentence
//! (the TTS cache makes a template's fixed lines free after the first call), resampled to
//! 8 kHz and queued in the pacer, which releases one frame per 20 ms to be µ-law encoded and
//! sent; a Twilio `mark` follows a line's last frame, and its return tells the dialogue the
//! line was heard. Caller speech during a line makes the dialogue stop it: the pacer is
//! cleared and Twilio is sent `clear`.
//!
//! The session's own loop never blocks: model work runs on the pools and comes back over
//! bounded channels.

pub mod dispatcher;
pub mod inbound;
pub mod runtime;
pub mod setup;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::app::AppState;
use crate::dialogue::{
    Action, BeepConfig, BeepDetector, CallbackTime, Dialogue, DialogueConfig, Event as DialogueEvent, LineId, Summary,
};
use crate::domain::status::{CallStatus, Outcome};
use crate::domain::{Id, Timestamp};
use crate::media::decode::resample_clip;
use crate::media::endpointer::{Endpointer, EndpointerConfig, Event as EndpointEvent};
use crate::media::g711;
use crate::media::pacer::{Pacer, PacerConfig, Tick};
use crate::media::recorder::Recorder;
use crate::speech::engine::SpeechEngine;
use crate::speech::vad::{VadRate, VadStream};
use crate::store::call_sessions::{Artifacts, RecordingFile, Speaker, Turn};
use crate::store::calls::{self, CallEnd};
use crate::telephony::twilio::stream::{CHUNK_SAMPLES, Inbound, MediaReorder, Outbound};

pub use setup::CallSetup;

/// How often a session looks in the database for a cancellation made through another node
/// (one made on this node arrives at once through `CallRuntime::request_hang_up`).
const CANCEL_POLL: Duration = Duration::from_secs(2);

/// 8 kHz: G.711 on the wire, and the rate the whole session runs at.
const RATE: u32 = 8000;
const FRAME: usize = CHUNK_SAMPLES;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("speech: {0}")]
    Speech(#[from] crate::speech::SpeechError),
    #[error("vad: {0}")]
    Vad(String),
    #[error("recording: {0}")]
    Recording(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// A bot line starts where its audio first exceeds this level (about -32 dBFS).
const LINE_ONSET_LEVEL: i16 = 800;

/// Audio of one line, on its way from the TTS pool to the pacer.
enum LineAudio {
    Frames(LineId, Vec<i16>),
    End(LineId),
    Failed(LineId, String),
}

/// A caller turn's transcription, back from the STT pool.
struct Heard {
    /// The transcription's id (`TurnTranscripts`).
    id: u64,
    start_ms: i64,
    end_ms: i64,
    result: Result<crate::speech::stt::Transcript, crate::speech::SpeechError>,
}

/// Which transcriptions are caller turns. A turn's audio is transcribed as soon as the caller
/// pauses (`Pause`), while its end is still being confirmed; if the turn then ends with the
/// same audio, that early transcription is the turn's (the reply comes sooner by the rest of
/// the end silence), and if the caller went on, it is dropped and the whole turn transcribed.
#[derive(Default)]
struct TurnTranscripts {
    next_id: u64,
    /// The transcription started at the latest pause: id, audio length, result once back.
    early: Option<(u64, usize, Option<Heard>)>,
    /// Transcriptions that are caller turns, whose results have not come back yet.
    awaited: Vec<u64>,
}

/// What to do when a turn ends.
enum TurnEnded {
    /// Transcribe its audio under this id.
    Transcribe(u64),
    /// The early transcription is the turn's; here is its result if it is already back.
    Early(Option<Heard>),
}

impl TurnTranscripts {
    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The caller paused: an early transcription of `audio_len` samples starts under the id.
    fn paused(&mut self, audio_len: usize) -> u64 {
        let id = self.new_id();
        self.early = Some((id, audio_len, None));
        id
    }

    fn ended(&mut self, audio_len: usize) -> TurnEnded {
        match self.early.take() {
            Some((id, len, result)) if len == audio_len => {
                if result.is_none() {
                    self.awaited.push(id);
                }
                TurnEnded::Early(result)
            }
            _ => {
                let id = self.new_id();
                self.awaited.push(id);
                TurnEnded::Transcribe(id)
            }
        }
    }

    /// A transcription came back: `Some` if it is a caller turn to act on now.
    fn arrived(&mut self, heard: Heard) -> Option<Heard> {
        if let Some(at) = self.awaited.iter().position(|&id| id == heard.id) {
            self.awaited.remove(at);
            return Some(heard);
        }
        if let Some((id, _, result)) = self.early.as_mut()
            && *id == heard.id
        {
            *result = Some(heard);
        }
        None
    }
}

/// The bot line currently being said.
struct Speaking {
    line: LineId,
    text: String,
    /// Milliseconds into the call when its first frame went out.
    started_ms: Option<i64>,
    synthesized: bool,
    /// Frames still to send before the line's `mark` (set once synthesis is complete).
    frames_until_mark: Option<usize>,
}

/// How a session ended, for the store.
struct Ending {
    outcome: Option<Outcome>,
    notes: Option<String>,
    /// The callback time the callee gave, if they asked for one with a time.
    callback: Option<CallbackTime>,
    do_not_call: bool,
    hang_up_requested: bool,
}

impl Ending {
    fn record(&mut self, summary: Summary) {
        self.outcome = Some(summary.outcome);
        self.notes = Some(summary.notes);
        self.callback = summary.callback.flatten();
    }
}

/// The moment a callback the callee asked for falls: read on the wall clock of the call's
/// campaign (its schedule's zone), else in UTC. "Later" has no moment.
async fn callback_moment(state: &AppState, setup: &CallSetup, when: CallbackTime, now: Timestamp) -> Option<Timestamp> {
    let zone = match &setup.call.campaign_id {
        Some(id) => crate::store::campaigns::get(&state.db, &setup.account_id, id)
            .await
            .ok()
            .flatten()
            .and_then(|c| c.schedule)
            .and_then(|s| jiff::tz::TimeZone::get(&s.time_zone).ok()),
        None => None,
    };
    let local = now.as_jiff().to_zoned(zone.unwrap_or(jiff::tz::TimeZone::UTC));
    when.resolve(&local).map(|at| Timestamp::from_jiff(at.timestamp()))
}

/// Takes over an admitted media stream: marks the call answered (emitting `call.started`),
/// prepares its script and the models, runs the conversation, and frees the call's slot.
pub async fn start(
    state: AppState,
    account_id: Id,
    call_id: Id,
    socket: WebSocket,
    start: crate::telephony::twilio::stream::StartMeta,
) {
    let answered = calls::mark_answered(&state.db, &account_id, &call_id, state.clock.now()).await;
    state.relay.wake();
    let call = match answered {
        Ok(Some(call)) => call,
        Ok(None) => {
            tracing::warn!(call = %call_id, "a stream arrived for a call that is not ringing");
            state.calls.release(&call_id);
            return;
        }
        Err(error) => {
            tracing::error!(call = %call_id, %error, "cannot mark the call answered");
            state.calls.release(&call_id);
            return;
        }
    };
    let prepared = async {
        let setup = setup::load(&state, &account_id, call).await.map_err(|e| e.to_string())?;
        let engine = state.calls.speech().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((setup, engine))
    }
    .await;
    match prepared {
        Ok((setup, engine)) => run(state.clone(), engine, setup, socket, start.stream_sid).await,
        Err(reason) => {
            tracing::error!(call = %call_id, %reason, "cannot run the call");
            let notes = format!("The call could not run: {reason}.");
            let _ = dispatcher::finish_without_audio(
                &state,
                &account_id,
                &call_id,
                CallStatus::Failed,
                Outcome::Failed,
                notes,
            )
            .await;
        }
    }
    state.calls.release(&call_id);
}

/// Hangs up a call that `calls::cancel` just cancelled. A ringing call is ended at its
/// carrier (a simulated callee that picks up anyway finds its stream refused). An
/// in-progress call's session is told to hang up: at once on this node, within
/// `CANCEL_POLL` on another.
pub async fn hang_up(state: &AppState, call_id: &Id, was: CallStatus) {
    match was {
        CallStatus::Ringing => {
            hang_up_at_carrier(state, call_id, false).await;
            state.calls.release(call_id);
        }
        CallStatus::InProgress => {
            state.calls.request_hang_up(call_id);
        }
        _ => {}
    }
}

/// Ends the carrier's leg of a call. Closing a Twilio media stream alone also ends the call,
/// since our TwiML has nothing after `<Connect>`; this makes it explicit and immediate.
async fn hang_up_at_carrier(state: &AppState, call_id: &Id, answered: bool) {
    let Ok(Some((_, carrier, Some(carrier_call_id)))) = crate::store::call_sessions::leg(&state.db, call_id).await
    else {
        return;
    };
    if let Some(carrier) = state.calls.carrier_named(&carrier)
        && let Err(error) = carrier.hang_up(&carrier_call_id, answered).await
    {
        tracing::warn!(call = %call_id, %error, "the carrier did not take the hang-up");
    }
}

/// How often a session tells the database it is still running (see
/// `dispatcher::recover_orphans`).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// A running session's watch: registered with the node for cancels, polling the database for
/// a cancel made elsewhere, and writing the call's heartbeat; all undone when the session
/// ends, however it ends.
struct SessionWatch {
    signal: Arc<tokio::sync::Notify>,
    poll: tokio::task::JoinHandle<()>,
    runtime: Arc<runtime::CallRuntime>,
    call_id: Id,
}

impl SessionWatch {
    fn start(state: &AppState, call_id: &Id) -> SessionWatch {
        let signal = state.calls.hang_up_signal(call_id);
        let poll = tokio::spawn({
            let db = state.db.clone();
            let clock = state.clock.clone();
            let call_id = call_id.clone();
            let signal = signal.clone();
            async move {
                let mut last_heartbeat: Option<Instant> = None;
                loop {
                    if last_heartbeat.is_none_or(|at| at.elapsed() >= HEARTBEAT) {
                        last_heartbeat = Some(Instant::now());
                        if let Err(error) = crate::store::call_sessions::heartbeat(&db, &call_id, clock.now()).await {
                            tracing::warn!(call = %call_id, %error, "cannot write the call's heartbeat");
                        }
                    }
                    tokio::time::sleep(CANCEL_POLL).await;
                    if matches!(calls::is_cancelled(&db, &call_id).await, Ok(true)) {
                        signal.notify_one();
                        return;
                    }
                }
            }
        });
        SessionWatch { signal, poll, runtime: state.calls.clone(), call_id: call_id.clone() }
    }
}

impl Drop for SessionWatch {
    fn drop(&mut self) {
        self.poll.abort();
        self.runtime.forget_hang_up(&self.call_id);
    }
}

/// Runs a call whose media stream has started: `socket` is the Twilio stream, already past
/// its `start` message.
pub async fn run(state: AppState, engine: Arc<SpeechEngine>, setup: CallSetup, socket: WebSocket, stream_sid: String) {
    let call_id = setup.call.id.clone();
    let account_id = setup.account_id.clone();
    if let Err(error) = run_inner(&state, engine, setup, socket, stream_sid).await {
        tracing::error!(call = %call_id, %error, "call session failed");
        // The call must not stay in progress forever: it ends as failed, with the reason.
        // (A no-op when the failure came after the call was already stored.)
        let notes = format!("The call failed on the gateway: {error}.");
        if let Err(error) =
            dispatcher::finish_without_audio(&state, &account_id, &call_id, CallStatus::Failed, Outcome::Failed, notes)
                .await
        {
            tracing::error!(call = %call_id, %error, "cannot store the failed call");
        }
    }
}

async fn run_inner(
    state: &AppState,
    engine: Arc<SpeechEngine>,
    setup: CallSetup,
    socket: WebSocket,
    stream_sid: String,
) -> Result<(), SessionError> {
    let started = Instant::now();
    let answered_at = state.clock.now();
    let session_watch = SessionWatch::start(state, &setup.call.id);
    let (mut ws_tx, mut ws_rx) = socket.split();

    let mut dialogue = Dialogue::new(
        setup.script.clone(),
        DialogueConfig { screen_for_machine: setup.screen_for_machine, ..DialogueConfig::default() },
    );
    let mut vad =
        VadStream::new(engine.vad.clone(), VadRate::from_hz(RATE).map_err(|e| SessionError::Vad(e.to_string()))?)
            .map_err(|e| SessionError::Vad(e.to_string()))?;
    let endpointer_config = EndpointerConfig { sample_rate: RATE, pause_events: true, ..EndpointerConfig::default() };
    let mut endpointer =
        Endpointer::new(&endpointer_config).map_err(|e| SessionError::Vad(format!("endpointer: {e}")))?;
    let mut beep =
        BeepDetector::new(BeepConfig::default()).map_err(|e| SessionError::Vad(format!("beep detector: {e}")))?;
    let mut pacer: Pacer<i16> = Pacer::new(
        // A minute of queued speech; TTS waits (back-pressure) beyond that.
        PacerConfig { frame_len: FRAME, capacity: 50 * 60, max_catch_up: 2 },
        started.into_std(),
    );
    let mut reorder = MediaReorder::new(3);

    let relative_path = PathBuf::from("recordings").join(format!("{}.wav", setup.call.id));
    let recording_path = state.config.store.data_dir.join(&relative_path);
    if let Some(dir) = recording_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut recorder = Recorder::new(std::fs::File::create(&recording_path)?, RATE, FRAME, 50)?;
    let mut caller_frames: std::collections::VecDeque<[i16; FRAME]> = std::collections::VecDeque::new();
    let mut bot_frames: std::collections::VecDeque<Option<[i16; FRAME]>> = std::collections::VecDeque::new();

    let (line_tx, mut line_rx) = mpsc::channel::<LineAudio>(64);
    let (heard_tx, mut heard_rx) = mpsc::channel::<Heard>(8);
    let mut speaking: Option<Speaking> = None;
    let mut turns: Vec<Turn> = Vec::new();
    // Each finished turn is saved as it happens (a crash loses no turn; the API shows the
    // conversation live); a writer task keeps only the latest copy pending.
    let (transcript_tx, transcript_rx) = tokio::sync::watch::channel(Vec::<Turn>::new());
    // Turns handed to the writer so far (checked every loop pass: no lock on the frame path).
    let mut turns_sent = 0;
    let transcript_writer = tokio::spawn(save_transcript_as_it_grows(
        state.clone(),
        setup.account_id.clone(),
        setup.call.id.clone(),
        transcript_rx,
    ));
    let mut turn_started_ms: Option<i64> = None;
    let mut transcripts = TurnTranscripts::default();
    // When the caller's last turn ended, until the bot's next line starts playing.
    let mut caller_stopped_at: Option<Instant> = None;
    let mut ending =
        Ending { outcome: None, notes: None, callback: None, do_not_call: false, hang_up_requested: false };
    let mut finished = false;

    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let ms_now = |at: Instant| at.duration_since(started).as_millis() as i64;

    let mut actions = dialogue.handle(DialogueEvent::Answered, started.into_std());
    let mut prewarmed = false;
    'call: loop {
        if turns_sent != turns.len() {
            turns_sent = turns.len();
            transcript_tx.send_replace(turns.clone());
        }
        // Perform what the dialogue asked for.
        for action in actions.drain(..) {
            tracing::debug!(call = %setup.call.id, at_ms = ms_now(Instant::now()), ?action, "dialogue action");
            match action {
                Action::Say { line, text, .. } => {
                    speaking = Some(Speaking {
                        line,
                        text: text.clone(),
                        started_ms: None,
                        synthesized: false,
                        frames_until_mark: None,
                    });
                    endpointer.set_bot_speaking(true);
                    spawn_line(&engine, line, text, line_tx.clone());
                }
                Action::Listen { expect, .. } => {
                    endpointer.expect_short_answer(matches!(expect, crate::dialogue::Expect::YesNo));
                }
                Action::StopSpeaking => {
                    pacer.clear();
                    let _ = ws_tx.send(Message::text(Outbound::Clear.to_json(&stream_sid))).await;
                    if let Some(line) = speaking.take() {
                        turns.push(Turn {
                            speaker: Speaker::Bot,
                            text: line.text,
                            start_ms: line.started_ms.unwrap_or_else(|| ms_now(Instant::now())),
                            end_ms: ms_now(Instant::now()),
                            confidence: None,
                            interrupted: true,
                        });
                    }
                    endpointer.set_bot_speaking(false);
                }
                Action::HangUp => {
                    ending.hang_up_requested = true;
                }
                Action::SetDoNotCall => ending.do_not_call = true,
                Action::RecordAnswer { .. } => {}
                Action::Finish(summary) => {
                    ending.record(summary);
                    finished = true;
                }
            }
        }
        if !prewarmed {
            // The rest of the script is synthesized ahead of need, queued behind the first
            // line (an outbound call's lines were already warmed while it rang).
            prewarmed = true;
            let lines = setup.lines();
            setup::prewarm(&engine, &setup.call.id, lines.get(1..).unwrap_or_default());
        }
        if ending.hang_up_requested && speaking.is_none() {
            // The last line has played: end the call from our side.
            let _ = ws_tx.close().await;
            break 'call;
        }
        if finished && ending.hang_up_requested {
            break 'call;
        }

        let deadline = dialogue.next_deadline().map(Instant::from_std);
        tokio::select! {
            _ = ticker.tick() => {
                let now = Instant::now();
                let mut out = [0i16; FRAME];
                loop {
                    match pacer.tick(now.into_std(), &mut out) {
                        Tick::Frame => {
                            let mut payload = [0u8; FRAME];
                            g711::encode_ulaw(&out, &mut payload);
                            if ws_tx.send(Message::text(Outbound::Media { payload: &payload }.to_json(&stream_sid))).await.is_err() {
                                actions = dialogue.handle(DialogueEvent::TransportLost { reason: "socket closed".into() }, now.into_std());
                                continue 'call;
                            }
                            bot_frames.push_back(Some(out));
                            if let Some(line) = speaking.as_mut() {
                                if line.started_ms.is_none() {
                                    line.started_ms = Some(ms_now(now));
                                    // Voice to voice, as the gateway sees it: the caller's last
                                    // voiced frame to the first frame of the bot's answer.
                                    if let Some(stopped) = caller_stopped_at.take() {
                                        metrics::histogram!("call_reply_latency_seconds").record(now.duration_since(stopped).as_secs_f64());
                                    }
                                }
                                if let Some(left) = line.frames_until_mark.as_mut() {
                                    *left = left.saturating_sub(1);
                                    if *left == 0 {
                                        let name = format!("line-{}", line.line.0);
                                        let _ = ws_tx.send(Message::text(Outbound::Mark { name: &name }.to_json(&stream_sid))).await;
                                        line.frames_until_mark = None;
                                    }
                                }
                            }
                        }
                        Tick::Drained | Tick::Idle => { bot_frames.push_back(None); break; }
                        Tick::Wait { .. } => break,
                    }
                }
                write_recording(&mut recorder, &mut caller_frames, &mut bot_frames)?;
            }
            Some(audio) = line_rx.recv() => {
                match audio {
                    LineAudio::Frames(line, samples) if speaking.as_ref().is_some_and(|s| s.line == line) => {
                        for frame in samples.chunks(FRAME) {
                            let mut padded = [0i16; FRAME];
                            padded[..frame.len()].copy_from_slice(frame);
                            // The queue holds a minute; a longer line is cut rather than
                            // stalling the call.
                            let _ = pacer.push(&padded);
                        }
                    }
                    LineAudio::End(line) | LineAudio::Failed(line, _) if speaking.as_ref().is_some_and(|s| s.line == line) => {
                        if let LineAudio::Failed(_, reason) = &audio {
                            tracing::warn!(%reason, "text-to-speech failed; skipping the line");
                        }
                        let queued = pacer.queued();
                        if let Some(current) = speaking.as_mut() {
                            current.synthesized = true;
                            if queued == 0 {
                                let name = format!("line-{}", current.line.0);
                                let _ = ws_tx.send(Message::text(Outbound::Mark { name: &name }.to_json(&stream_sid))).await;
                            } else {
                                current.frames_until_mark = Some(queued);
                            }
                        }
                    }
                    // Audio of a line that was cut off: dropped.
                    _ => {}
                }
            }
            Some(heard) = heard_rx.recv() => {
                tracing::debug!(call = %setup.call.id, at_ms = ms_now(Instant::now()), id = heard.id, result = ?heard.result.as_ref().map(|t| &t.text), "transcribed");
                if let Some(heard) = transcripts.arrived(heard) {
                    actions = caller_turn(heard, &mut turns, &mut dialogue);
                }
            }
            _ = session_watch.signal.notified() => {
                actions = dialogue.handle(DialogueEvent::Cancelled, Instant::now().into_std());
                flush_actions(&mut actions, &mut ending);
                let _ = ws_tx.close().await;
                hang_up_at_carrier(state, &setup.call.id, true).await;
                break 'call;
            }
            _ = sleep_until_opt(deadline) => {
                actions = dialogue.handle(DialogueEvent::Tick, Instant::now().into_std());
            }
            message = ws_rx.next() => {
                let now = Instant::now();
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        actions = dialogue.handle(DialogueEvent::TransportLost { reason: "the media stream closed without a stop".into() }, now.into_std());
                        flush_actions(&mut actions, &mut ending);
                        break 'call;
                    }
                    Some(Ok(_)) => continue 'call,
                };
                let inbound = match Inbound::parse(text.as_str()) {
                    Ok(inbound) => inbound,
                    Err(error) => {
                        tracing::debug!(%error, "ignoring a malformed stream message");
                        continue 'call;
                    }
                };
                match inbound {
                    Inbound::Media { chunk, payload, .. } => {
                        reorder.push(chunk, payload);
                        while let Some(payload) = reorder.pop() {
                            let mut pcm = [0i16; FRAME];
                            let n = payload.len().min(FRAME);
                            g711::decode_ulaw(&payload[..n], &mut pcm[..n]);
                            caller_frames.push_back(pcm);
                            let probability = vad.push_i16(&pcm).map_err(|e| SessionError::Vad(e.to_string()))?;
                            if dialogue.wants_beep() && beep.push(&pcm).is_some() {
                                actions.extend(dialogue.handle(DialogueEvent::Beep, now.into_std()));
                            }
                            for event in endpointer.push_frame(probability, &pcm) {
                                match event {
                                    EndpointEvent::SpeechStarted => {
                                        turn_started_ms = Some(ms_now(now) - i64::from(endpointer_config.min_speech_ms + endpointer_config.pre_roll_ms));
                                        actions.extend(dialogue.handle(DialogueEvent::CallerSpeechStarted, now.into_std()));
                                    }
                                    EndpointEvent::BargeIn => {}
                                    EndpointEvent::Pause { audio } => {
                                        // Only with a worker free: an early guess must not
                                        // delay another call's confirmed turn.
                                        if engine.stt.in_pool() < engine.stt.config().workers {
                                            let stopped = now.checked_sub(Duration::from_millis(u64::from(endpointer_config.pre_roll_ms))).unwrap_or(now);
                                            let end_ms = ms_now(stopped);
                                            let start_ms = turn_started_ms.unwrap_or(end_ms).max(0);
                                            let id = transcripts.paused(audio.len());
                                            spawn_transcription(&engine, id, audio, start_ms, end_ms, heard_tx.clone());
                                        }
                                    }
                                    EndpointEvent::SpeechEnded { audio, silence_ms } => {
                                        actions.extend(dialogue.handle(DialogueEvent::CallerSpeechEnded, now.into_std()));
                                        let stopped = now.checked_sub(Duration::from_millis(u64::from(silence_ms))).unwrap_or(now);
                                        caller_stopped_at = Some(stopped);
                                        let end_ms = ms_now(stopped);
                                        let start_ms = turn_started_ms.take().unwrap_or(end_ms).max(0);
                                        match transcripts.ended(audio.len()) {
                                            TurnEnded::Transcribe(id) => spawn_transcription(&engine, id, audio, start_ms, end_ms, heard_tx.clone()),
                                            TurnEnded::Early(Some(heard)) => actions.extend(caller_turn(heard, &mut turns, &mut dialogue)),
                                            TurnEnded::Early(None) => {}
                                        }
                                    }
                                }
                            }
                        }
                    }
                    Inbound::Dtmf { digit } => actions = dialogue.handle(DialogueEvent::Dtmf(digit), now.into_std()),
                    Inbound::Mark { name } => {
                        let done = name.strip_prefix("line-").and_then(|n| n.parse::<u32>().ok()).map(LineId);
                        if let Some(line) = done
                            && speaking.as_ref().is_some_and(|s| s.line == line && s.synthesized)
                        {
                            let said = speaking.take().expect("checked above");
                            turns.push(Turn {
                                speaker: Speaker::Bot,
                                text: said.text,
                                start_ms: said.started_ms.unwrap_or_else(|| ms_now(now)),
                                end_ms: ms_now(now),
                                confidence: None,
                                interrupted: false,
                            });
                            endpointer.set_bot_speaking(false);
                            actions = dialogue.handle(DialogueEvent::LineDone(line), now.into_std());
                        }
                    }
                    Inbound::Stop { .. } => {
                        actions = dialogue.handle(DialogueEvent::HungUp, now.into_std());
                        flush_actions(&mut actions, &mut ending);
                        break 'call;
                    }
                    Inbound::Connected { .. } | Inbound::Start(_) | Inbound::Unknown { .. } => {}
                }
            }
        }
    }

    // A line cut short by the hang-up is still part of what was said.
    if let Some(line) = speaking.take()
        && let Some(start_ms) = line.started_ms
    {
        let end_ms = ms_now(Instant::now());
        turns.push(Turn {
            speaker: Speaker::Bot,
            text: line.text,
            start_ms,
            end_ms,
            confidence: None,
            interrupted: true,
        });
    }

    // Whatever is still unpaired goes to the file, then the header is final.
    while !caller_frames.is_empty() || !bot_frames.is_empty() {
        let caller = caller_frames.pop_front();
        let bot = bot_frames.pop_front().flatten();
        recorder.write_frame(caller.as_ref().map(|f| &f[..]), bot.as_ref().map(|f| &f[..]))?;
    }
    let frames_written = recorder.duration_frames();
    recorder.finish()?;
    let bytes = std::fs::metadata(&recording_path).map(|m| m.len() as i64).unwrap_or(0);

    // The live copy must not land after the final one.
    drop(transcript_tx);
    let _ = transcript_writer.await;

    let ended_at = state.clock.now();
    let duration = ended_at.seconds_since(answered_at).max(0);
    let outcome = ending.outcome.unwrap_or(Outcome::Failed);
    let status = if matches!(outcome, Outcome::Failed) { CallStatus::Failed } else { CallStatus::Completed };
    if ending.do_not_call
        && let Some(contact_id) = &setup.call.contact_id
    {
        let patch = crate::store::contacts::ContactPatch { do_not_call: Some(true), ..Default::default() };
        crate::store::contacts::update(&state.db, &setup.account_id, contact_id, patch).await?;
    }
    let callback_at = match ending.callback {
        Some(when) => callback_moment(state, &setup, when, ended_at).await,
        None => None,
    };
    let base = state.config.public_base_url();
    let end = CallEnd {
        status,
        callback_at,
        outcome,
        notes: ending.notes,
        ended_at,
        duration: Some(duration),
        recording_url: Some(format!("{base}/v1/calls/{}/recording", setup.call.id)),
        transcript_url: Some(format!("{base}/v1/calls/{}/transcript", setup.call.id)),
    };
    let artifacts = Artifacts {
        transcript: Some(turns),
        recording: Some(RecordingFile {
            path: relative_path.to_string_lossy().into_owned(),
            bytes,
            duration_ms: frames_written as i64 * 20,
        }),
    };
    metrics::counter!("calls_ended_total", "status" => status.as_str(), "outcome" => outcome.as_str()).increment(1);
    metrics::counter!("media_chunks_lost_total").increment(reorder.lost);
    metrics::counter!("media_chunks_late_total").increment(reorder.late);
    calls::finish(&state.db, &setup.account_id, &setup.call.id, end, artifacts).await?;
    state.relay.wake();
    Ok(())
}

async fn save_transcript_as_it_grows(
    state: AppState,
    account_id: Id,
    call_id: Id,
    mut turns: tokio::sync::watch::Receiver<Vec<Turn>>,
) {
    while turns.changed().await.is_ok() {
        let latest = turns.borrow_and_update().clone();
        let saved =
            crate::store::call_sessions::save_transcript(&state.db, &account_id, &call_id, &latest, state.clock.now());
        if let Err(error) = saved.await {
            tracing::warn!(call = %call_id, %error, "cannot save the live transcript");
        }
    }
}

/// A transcribed caller turn: into the transcript and to the dialogue.
fn caller_turn(heard: Heard, turns: &mut Vec<Turn>, dialogue: &mut Dialogue) -> Vec<Action> {
    match heard.result {
        Ok(transcript) if !transcript.text.trim().is_empty() => {
            turns.push(Turn {
                speaker: Speaker::Caller,
                text: transcript.text.clone(),
                start_ms: heard.start_ms,
                end_ms: heard.end_ms,
                confidence: Some(transcript.confidence),
                interrupted: false,
            });
            let event = DialogueEvent::CallerTurn { text: transcript.text, confidence: transcript.confidence };
            dialogue.handle(event, Instant::now().into_std())
        }
        Ok(_) => Vec::new(),
        Err(error) => {
            // The caller said something we could not transcribe (the pool stayed full): an
            // unclear answer, so the dialogue asks again now rather than after its timeout.
            tracing::warn!(%error, "speech-to-text failed for a caller turn");
            dialogue
                .handle(DialogueEvent::CallerTurn { text: String::new(), confidence: 0.0 }, Instant::now().into_std())
        }
    }
}

/// Takes the outcome out of actions that arrive as the call ends.
fn flush_actions(actions: &mut Vec<Action>, ending: &mut Ending) {
    for action in actions.drain(..) {
        match action {
            Action::Finish(summary) => ending.record(summary),
            Action::SetDoNotCall => ending.do_not_call = true,
            _ => {}
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Writes paired frames (caller left, bot right). Both sides run at 50 frames a second; a
/// side that falls more than 10 frames behind (a stalled stream) is filled with silence.
fn write_recording(
    recorder: &mut Recorder<std::fs::File>,
    caller: &mut std::collections::VecDeque<[i16; FRAME]>,
    bot: &mut std::collections::VecDeque<Option<[i16; FRAME]>>,
) -> std::io::Result<()> {
    while (!caller.is_empty() && !bot.is_empty()) || caller.len() > 10 || bot.len() > 10 {
        let c = caller.pop_front();
        let b = bot.pop_front().flatten();
        recorder.write_frame(c.as_ref().map(|f| &f[..]), b.as_ref().map(|f| &f[..]))?;
    }
    Ok(())
}

/// Synthesizes a line sentence by sentence and sends its 8 kHz audio to the session.
fn spawn_line(engine: &Arc<SpeechEngine>, line: LineId, text: String, out: mpsc::Sender<LineAudio>) {
    let engine = engine.clone();
    tokio::spawn(async move {
        let mut stream = match engine.tts.synthesize_stream(None, &text) {
            Ok(stream) => stream,
            Err(error) => {
                let _ = out.send(LineAudio::Failed(line, error.to_string())).await;
                return;
            }
        };
        let mut first = true;
        while let Some(chunk) = stream.recv().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => {
                    let _ = out.send(LineAudio::Failed(line, error.to_string())).await;
                    return;
                }
            };
            let samples: Vec<f32> = chunk.samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
            let resampled = match resample_clip(&samples, chunk.sample_rate, RATE) {
                Ok(r) => r,
                Err(error) => {
                    let _ = out.send(LineAudio::Failed(line, error.to_string())).await;
                    return;
                }
            };
            let mut pcm: Vec<i16> = resampled.iter().map(|&s| (s * 32767.0).clamp(-32768.0, 32767.0) as i16).collect();
            if std::mem::take(&mut first) {
                // The line starts with its first sound (10 ms lead-in), not the voice's silence.
                let quiet = crate::media::pcm::leading_silence(&pcm, LINE_ONSET_LEVEL, RATE as usize / 100);
                pcm.drain(..quiet);
            }
            if out.send(LineAudio::Frames(line, pcm)).await.is_err() {
                return;
            }
        }
        let _ = out.send(LineAudio::End(line)).await;
    });
}

/// How long a caller turn may wait for the STT pool to take it when it is full: a turn is the
/// caller's answer, so it is worth a short wait; past this the caller is asked again at once.
const STT_ADMISSION_WAIT: Duration = Duration::from_secs(2);

/// Transcribes on the pool, trying again every 100 ms while it is full (up to
/// `STT_ADMISSION_WAIT`); the pool's bounded queue stays the back-pressure.
async fn transcribe_when_admitted(
    engine: &SpeechEngine,
    audio_16k: Vec<f32>,
) -> Result<crate::speech::stt::Transcript, crate::speech::SpeechError> {
    let deadline = Instant::now() + STT_ADMISSION_WAIT;
    loop {
        match engine.stt.transcribe(audio_16k.clone()).await {
            Err(crate::speech::SpeechError::Overloaded(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Transcribes a caller turn (8 kHz) on the STT pool.
fn spawn_transcription(
    engine: &Arc<SpeechEngine>,
    id: u64,
    audio: Vec<i16>,
    start_ms: i64,
    end_ms: i64,
    out: mpsc::Sender<Heard>,
) {
    let engine = engine.clone();
    tokio::spawn(async move {
        let samples: Vec<f32> = audio.iter().map(|&s| f32::from(s) / 32768.0).collect();
        let result = match resample_clip(&samples, RATE, 16_000) {
            Ok(audio_16k) => transcribe_when_admitted(&engine, audio_16k).await,
            Err(error) => Err(crate::speech::SpeechError::InvalidInput(error.to_string())),
        };
        let _ = out.send(Heard { id, start_ms, end_ms, result }).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(id: u64) -> Heard {
        Heard { id, start_ms: 0, end_ms: 0, result: Err(crate::speech::SpeechError::InvalidInput(format!("#{id}"))) }
    }

    #[test]
    fn an_early_transcription_is_the_turns_only_if_the_turn_ends_with_the_same_audio() {
        // Back before the end: used at once when the turn ends as it was.
        let mut t = TurnTranscripts::default();
        let id = t.paused(3200);
        assert!(t.arrived(heard(id)).is_none(), "not a turn yet");
        assert!(matches!(t.ended(3200), TurnEnded::Early(Some(h)) if h.id == id));

        // Still running at the end: its result is the turn's when it arrives.
        let id = t.paused(4000);
        assert!(matches!(t.ended(4000), TurnEnded::Early(None)));
        assert_eq!(t.arrived(heard(id)).map(|h| h.id), Some(id));

        // The caller went on after the pause: the early result is dropped, the turn transcribed.
        let early = t.paused(1600);
        let TurnEnded::Transcribe(full) = t.ended(5600) else { panic!("the longer turn is transcribed") };
        assert!(t.arrived(heard(early)).is_none());
        assert_eq!(t.arrived(heard(full)).map(|h| h.id), Some(full));

        // No pause at all (short answers): transcribed at the end.
        assert!(matches!(t.ended(800), TurnEnded::Transcribe(_)));
    }
}
