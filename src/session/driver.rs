//! The per-call task: drives a [`CallCore`] from a transport adapter. It does the I/O the core
//! asks for and nothing else: frames to and from the transport, VAD on inbound frames, model
//! work on the shared pools, the recording, the live transcript, and at the end the stored call.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use super::core::{CallCore, CallResult, CoreConfig, Input, Output, RATE};
use super::recording::CallRecording;
use super::speech::{spawn_judgement, spawn_line, spawn_transcription};
use super::transport::{MediaTransport, TransportEvent};
use super::{CallSetup, SessionError, SessionWatch, callback_moment, hang_up_at_carrier};
use crate::app::AppState;
use crate::dialogue::DialogueConfig;
use crate::domain::Timestamp;
use crate::domain::status::{CallStatus, Outcome};
use crate::media::resample::StreamResampler;
use crate::speech::engine::SpeechEngine;
use crate::speech::vad::{VadRate, VadStream};
use crate::store::call_sessions::{Artifacts, RecordingFile, Turn};
use crate::store::calls::{self, CallEnd};

/// The rate STT and the end-of-turn model take.
const MODEL_RATE: u32 = 16_000;

/// Runs a call whose media has started on `transport`, to its end and its stored record.
pub async fn run_call<T: MediaTransport>(
    state: &AppState,
    engine: Arc<SpeechEngine>,
    setup: CallSetup,
    transport: T,
) -> Result<(), SessionError> {
    let started = Instant::now();
    let answered_at = state.clock.now();
    let config = CoreConfig {
        dialogue: DialogueConfig { screen_for_machine: setup.screen_for_machine, ..DialogueConfig::default() },
        ..CoreConfig::default()
    };
    let core = CallCore::new(setup.script.clone(), config, started.into_std())?;
    let relative_path = PathBuf::from("recordings").join(format!("{}.wav", setup.call.id));
    let recording = CallRecording::create(&state.config.store.data_dir.join(&relative_path));
    let mut call = CallIo::new(state, engine, &setup, transport, recording)?;
    let span = tracing::info_span!("call", id = %setup.call.id);
    let result = call.converse(core, started).instrument(span).await?;

    let recorded = call.recording.finish();
    let stats = call.transport.stats();
    metrics::counter!("media_chunks_lost_total").increment(stats.frames_lost);
    metrics::counter!("media_chunks_late_total").increment(stats.frames_late);
    // The live copy must not land after the final one.
    let turns = call.transcript.finish().await;
    let mut result = result;
    let recording = match recorded {
        Ok(recorded) => Some(RecordingFile {
            path: relative_path.to_string_lossy().into_owned(),
            bytes: recorded.bytes,
            duration_ms: recorded.duration_ms,
        }),
        Err(reason) => {
            let said = format!("The recording failed ({reason}); the transcript was kept.");
            result.notes = Some(match result.notes.take() {
                Some(notes) => format!("{notes} {said}"),
                None => said,
            });
            None
        }
    };
    store_call(state, &setup, result, answered_at, turns, recording).await
}

/// What one call's loop holds besides the core.
struct CallIo<'a, T> {
    state: &'a AppState,
    setup: &'a CallSetup,
    engine: Arc<SpeechEngine>,
    transport: T,
    recording: CallRecording,
    transcript: TranscriptWriter,
    vad: VadStream,
    /// 8 -> 16 kHz for the models: one per call, reused for every turn.
    upsampler: StreamResampler,
    /// The last clip upsampled: a pause's `Judge` and `Transcribe` carry the same audio.
    last_upsampled: Option<(u64, Arc<Vec<f32>>)>,
    to_core: mpsc::Sender<Input>,
    from_tasks: mpsc::Receiver<Input>,
    watch: SessionWatch,
    cancelled: bool,
}

impl<'a, T: MediaTransport> CallIo<'a, T> {
    fn new(
        state: &'a AppState,
        engine: Arc<SpeechEngine>,
        setup: &'a CallSetup,
        transport: T,
        recording: CallRecording,
    ) -> Result<Self, SessionError> {
        let vad_error = |e: crate::speech::vad::VadError| SessionError::Vad(e.to_string());
        let vad = VadStream::new(engine.vad.clone(), VadRate::from_hz(RATE).map_err(vad_error)?).map_err(vad_error)?;
        let upsampler = StreamResampler::new(RATE, MODEL_RATE).map_err(|e| SessionError::Vad(e.to_string()))?;
        let (to_core, from_tasks) = mpsc::channel(64);
        Ok(CallIo {
            state,
            setup,
            watch: SessionWatch::start(state, &setup.call.id),
            transcript: TranscriptWriter::start(state, setup),
            engine,
            transport,
            recording,
            vad,
            upsampler,
            last_upsampled: None,
            to_core,
            from_tasks,
            cancelled: false,
        })
    }

    /// Feeds the core until it reports the end.
    async fn converse(&mut self, mut core: CallCore, started: Instant) -> Result<CallResult, SessionError> {
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut keepalive = tokio::time::interval(super::transport::KEEPALIVE);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        core.handle(Input::Answered, started.into_std());
        // The rest of the script is synthesized ahead of need, queued behind the first line (an
        // outbound call's lines were already warmed while it rang).
        let phrases = crate::dialogue::Phrases::default();
        let mut lines = self.setup.lines();
        lines.extend(phrases.fixed());
        super::setup::prewarm(&self.engine, &self.setup.call.id, lines.get(1..).unwrap_or_default());
        loop {
            while let Some(output) = core.poll() {
                if let Output::Finished(result) = output {
                    return Ok(result);
                }
                self.perform(output, &mut core).await?;
            }
            tokio::select! {
                _ = ticker.tick() => core.handle(Input::Tick, Instant::now().into_std()),
                _ = keepalive.tick() => {
                    if let Err(error) = self.transport.keepalive().await {
                        core.handle(Input::Lost(error.to_string()), Instant::now().into_std());
                    }
                }
                event = self.transport.next_event() => self.take_event(event, &mut core)?,
                Some(input) = self.from_tasks.recv() => core.handle(input, Instant::now().into_std()),
                _ = self.watch.signal.notified() => {
                    self.cancelled = true;
                    core.handle(Input::Cancelled, Instant::now().into_std());
                }
            }
            self.recording.write_paired();
        }
    }

    fn take_event(&mut self, event: TransportEvent, core: &mut CallCore) -> Result<(), SessionError> {
        let now = Instant::now().into_std();
        match event {
            TransportEvent::Audio(pcm) => {
                self.recording.caller(&pcm);
                let speech = self.vad.push_i16(&pcm).map_err(|e| SessionError::Vad(e.to_string()))?;
                core.handle(Input::Audio { pcm, speech }, now);
            }
            TransportEvent::Dtmf(digit) => core.handle(Input::Dtmf(digit), now),
            TransportEvent::Played(line) => core.handle(Input::Played(line), now),
            TransportEvent::Ended => core.handle(Input::HungUp, now),
            TransportEvent::Lost(reason) => core.handle(Input::Lost(reason), now),
        }
        Ok(())
    }

    async fn perform(&mut self, output: Output, core: &mut CallCore) -> Result<(), SessionError> {
        let now = || Instant::now().into_std();
        match output {
            Output::Play(frame) => {
                self.recording.bot(Some(&frame));
                if let Err(error) = self.transport.play(&frame).await {
                    core.handle(Input::Lost(error.to_string()), now());
                }
            }
            Output::Quiet => self.recording.bot(None),
            Output::Mark(line) => {
                let _ = self.transport.mark(line).await;
            }
            Output::Clear => {
                let _ = self.transport.clear().await;
            }
            Output::Transcribe { id, audio, prompt } => {
                let audio_16k = self.upsampled(id, &audio)?;
                spawn_transcription(&self.engine, id, audio_16k, prompt, self.to_core.clone());
            }
            Output::Judge { id, audio } => {
                let audio_16k = self.upsampled(id, &audio)?;
                spawn_judgement(&self.engine, id, audio_16k, self.to_core.clone());
            }
            Output::Synthesize { line, text } => spawn_line(&self.engine, line, text, self.to_core.clone()),
            Output::TranscriptChanged => self.transcript.update(core.transcript()),
            Output::ReplyLatency(latency) => {
                metrics::histogram!("call_reply_latency_seconds").record(latency.as_secs_f64());
            }
            Output::HangUp => {
                self.transport.close().await;
                if self.cancelled {
                    hang_up_at_carrier(self.state, &self.setup.call.id, true).await;
                }
            }
            Output::Finished(_) => {}
        }
        Ok(())
    }

    fn upsampled(&mut self, id: u64, audio: &[i16]) -> Result<Arc<Vec<f32>>, SessionError> {
        if let Some((last, clip)) = &self.last_upsampled
            && *last == id
        {
            return Ok(clip.clone());
        }
        let clip = Arc::new(self.upsampler.clip_to_f32(audio).map_err(|e| SessionError::Vad(e.to_string()))?);
        self.last_upsampled = Some((id, clip.clone()));
        Ok(clip)
    }
}

/// Saves the transcript as it grows (a crash loses no turn; the API shows the conversation
/// live); a writer task keeps only the latest copy pending.
struct TranscriptWriter {
    latest: tokio::sync::watch::Sender<Vec<Turn>>,
    task: tokio::task::JoinHandle<()>,
}

impl TranscriptWriter {
    fn start(state: &AppState, setup: &CallSetup) -> TranscriptWriter {
        let (latest, mut turns) = tokio::sync::watch::channel(Vec::<Turn>::new());
        let (state, account_id, call_id) = (state.clone(), setup.account_id.clone(), setup.call.id.clone());
        let task = tokio::spawn(async move {
            while turns.changed().await.is_ok() {
                let latest = turns.borrow_and_update().clone();
                let now = state.clock.now();
                let saved =
                    crate::store::call_sessions::save_transcript(&state.db, &account_id, &call_id, &latest, now);
                if let Err(error) = saved.await {
                    tracing::warn!(call = %call_id, %error, "cannot save the live transcript");
                }
            }
        });
        TranscriptWriter { latest, task }
    }

    fn update(&self, turns: &[Turn]) {
        self.latest.send_replace(turns.to_vec());
    }

    /// Stops the writer once its pending copy is saved; returns the final transcript.
    async fn finish(self) -> Vec<Turn> {
        let turns = self.latest.borrow().clone();
        drop(self.latest);
        let _ = self.task.await;
        turns
    }
}

/// Stores how the call ended: status, outcome, notes, callback, do-not-call, the transcript
/// and the recording, in one go (the webhooks follow from the outbox).
async fn store_call(
    state: &AppState,
    setup: &CallSetup,
    result: CallResult,
    answered_at: Timestamp,
    turns: Vec<Turn>,
    recording: Option<RecordingFile>,
) -> Result<(), SessionError> {
    let ended_at = state.clock.now();
    let duration = ended_at.seconds_since(answered_at).max(0);
    let outcome = result.outcome;
    let status = if matches!(outcome, Outcome::Failed) { CallStatus::Failed } else { CallStatus::Completed };
    if result.do_not_call
        && let Some(contact_id) = &setup.call.contact_id
    {
        let patch = crate::store::contacts::ContactPatch { do_not_call: Some(true), ..Default::default() };
        crate::store::contacts::update(&state.db, &setup.account_id, contact_id, patch).await?;
    }
    let callback_at = match result.summary.as_ref().and_then(|s| s.callback.flatten()) {
        Some(when) => callback_moment(state, setup, when, ended_at).await,
        None => None,
    };
    let base = state.config.public_base_url();
    let end = CallEnd {
        status,
        callback_at,
        outcome,
        notes: result.notes,
        ended_at,
        duration: Some(duration),
        recording_url: recording.as_ref().map(|_| format!("{base}/v1/calls/{}/recording", setup.call.id)),
        transcript_url: Some(format!("{base}/v1/calls/{}/transcript", setup.call.id)),
    };
    let artifacts = Artifacts { transcript: Some(turns), recording };
    metrics::counter!("calls_ended_total", "status" => status.as_str(), "outcome" => outcome.as_str()).increment(1);
    calls::finish(&state.db, &setup.account_id, &setup.call.id, end, artifacts).await?;
    state.relay.wake();
    Ok(())
}
