//! Speech to text: a pool of whisper.cpp workers (through `whisper-rs`) behind a bounded queue.
//!
//! The ggml model is loaded once; each worker thread owns one `WhisperState` (the per-inference
//! buffers, a few MB for tiny.en) and runs one transcription at a time on `threads_per_worker`
//! threads. Admission is decided before anything is queued: at most `workers + queue_depth`
//! clips are in the pool (running or waiting), and one more is refused at once with
//! `SpeechError::Overloaded("stt")` (counted in `stt_rejected_total`) so a busy gateway sheds a
//! turn instead of letting every caller wait longer.
//!
//! What keeps a short turn fast:
//! - greedy decoding (`best_of` 1), no context carried over from the previous clip (the pool is
//!   shared by every call), one segment without timestamp tokens unless asked for;
//! - the encoder sees only as much of the 30 s window as the clip needs: whisper's encoder has
//!   1500 positions for 30 s (50 per second), so `audio_ctx = ceil(secs * 50) + margin`: a 2 s
//!   turn took 111 ms instead of 919 ms on 2 threads. The model was trained on full windows
//!   only; `shrink_audio_ctx: false` turns this off, and `benches/stt.rs` measures the accuracy
//!   difference (docs/BENCHMARKS.md);
//! - a token budget per window and a collapse of repeated phrases (no phrase is left said more
//!   than twice in a row) bound what a decoding loop costs and leaves in the text; digital
//!   silence never reaches the model.
//!
//! Metrics: `stt_rejected_total` (counter), `stt_latency_seconds` (histogram, from admission to
//! result: queue wait plus inference).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

use super::SpeechError;
use super::models::require;

/// The sample rate whisper expects.
pub const SAMPLE_RATE: u32 = 16_000;
/// Encoder positions per second of audio (1500 for whisper's 30 s window).
const AUDIO_CTX_PER_SEC: f64 = 50.0;
/// Encoder positions of a full window: the model's maximum.
const FULL_AUDIO_CTX: u32 = 1500;
/// The name in `SpeechError::Overloaded` / `PoolClosed`.
const POOL: &str = "stt";

/// How the pool is sized and how it decodes.
#[derive(Debug, Clone)]
pub struct SttConfig {
    /// Worker threads, each with its own whisper state: clips transcribed at the same time.
    pub workers: usize,
    /// ggml threads each worker computes with.
    pub threads_per_worker: usize,
    /// Clips that may wait for a free worker; one more is refused with `Overloaded`.
    pub queue_depth: usize,
    /// Spoken language ("en"; "auto" detects it with a multilingual model). English-only
    /// models (`*.en`) ignore it.
    pub language: String,
    /// Scale whisper's encoder context to the clip instead of always encoding 30 s.
    pub shrink_audio_ctx: bool,
    /// Encoder positions added to the clip's own when shrinking (50 = 1 s): room for the
    /// encoder's convolution edge and for speech cut at the clip's end.
    pub audio_ctx_margin: u32,
    /// Silence put before the clip. tiny.en often loses a soft first sound said in the clip's
    /// first milliseconds (Piper's "Stop calling me" through µ-law was heard as "up calling
    /// me" in 11 of 20 syntheses, 4 of 20 with 200 ms in front). Off by default: the
    /// endpointer's turns already start with 200 ms of pre-roll, and on jfk.wav cuts that
    /// have one the extra lead-in cost accuracy (docs/BENCHMARKS.md). For clips cut at the
    /// first sample (synthesized speech, trimmed files).
    pub lead_in: Duration,
    /// Clips shorter than this (lead-in included) are padded with silence at the end.
    /// whisper.cpp returns nothing for less than 100 ms of audio, and tiny.en heard a lone
    /// espeak-ng "yes" (0.7 s) as "S" unpadded and as "Yes" padded to 1 s; padding also sets
    /// the shrunk context's floor.
    pub min_clip: Duration,
    /// Longer clips are refused with `InvalidInput`: a phone turn is seconds long, and a worker
    /// busy for minutes would stall every call behind it. The CLI may raise it.
    pub max_clip: Duration,
    /// Emit timestamp tokens and let whisper split segments at pauses. Off: one segment per 30 s
    /// window, a few decoder steps fewer. With a shrunk context timestamps make tiny.en loop
    /// (`cargo bench --bench stt -- accuracy`), so turn `shrink_audio_ctx` off with them.
    pub segment_timestamps: bool,
    /// ggml flash attention in the encoder and decoder.
    pub flash_attn: bool,
    /// Retry a decode that looks wrong (low log-probability, repetition) at rising temperatures
    /// (whisper's default). Off: one greedy pass, a bounded cost per clip.
    pub temperature_fallback: bool,
    /// A clip whose loudest 20 ms is quieter than this (dBFS) is silence: an empty transcript
    /// without running the model. Without timestamp tokens whisper's no-speech estimate is not
    /// usable and tiny.en writes "you" for silence. `None` sends every clip to the model.
    pub silence_dbfs: Option<f32>,
}

impl SttConfig {
    /// Sizing for a machine with `cores` cores: one worker per core, each on one thread, and a
    /// queue of two clips per worker (a 2 s turn takes a few hundred ms, so a queued clip waits
    /// well under a second before the pool refuses more).
    ///
    /// Why not fewer workers on more threads: ggml's threads meet at a busy-wait barrier after
    /// every operation, so when another thread of the gateway (media, VAD, TTS) or of the host
    /// takes one of the cores, the other ggml thread spins until it is scheduled again. Measured
    /// on 2 cores (`cargo bench --bench stt -- sizing`, docs/BENCHMARKS.md): on a quiet machine
    /// 1 worker x 2 threads answers a lone 2 s clip in 88 ms against 160 ms, but 2 x 1 clears
    /// a burst 20% sooner; on an oversubscribed one 1 x 2 took 1155 ms per lone clip, 2 x 1
    /// 336 ms.
    pub fn for_cores(cores: usize) -> Self {
        let workers = cores.max(1);
        let threads_per_worker = 1;
        SttConfig {
            workers,
            threads_per_worker,
            queue_depth: 2 * workers,
            language: "en".to_owned(),
            shrink_audio_ctx: true,
            audio_ctx_margin: 128,
            lead_in: Duration::ZERO,
            min_clip: Duration::from_secs(1),
            max_clip: Duration::from_secs(120),
            segment_timestamps: false,
            flash_attn: false,
            temperature_fallback: false,
            silence_dbfs: Some(-50.0),
        }
    }
}

impl Default for SttConfig {
    /// `for_cores` with this machine's available parallelism.
    fn default() -> Self {
        SttConfig::for_cores(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// A clip's transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The segments' text joined by single spaces; empty when nothing was said.
    pub text: String,
    pub segments: Vec<Segment>,
    /// Mean probability of the text tokens of all segments (0 when there are none). Token
    /// probabilities are whisper's softmax outputs for the chosen tokens: near 1 when the model
    /// is sure, ~0.3-0.6 on mumbled or out-of-vocabulary words.
    pub confidence: f32,
}

/// A stretch of the clip with its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start_ms: u32,
    pub end_ms: u32,
    pub text: String,
    /// Mean probability of the segment's text tokens.
    pub confidence: f32,
    /// whisper's probability that its window holds no speech (the `<|nospeech|>` token's
    /// probability at the first decoding step).
    pub no_speech_prob: f32,
}

/// A clip waiting for a worker.
struct Job {
    audio: Vec<f32>,
    /// What whisper is told came just before the clip (see `transcribe_with_prompt`).
    prompt: Option<String>,
    reply: oneshot::Sender<Result<Transcript, SpeechError>>,
    admitted: Instant,
    _slot: Slot,
}

/// One place in the pool, given back when the job is done or dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The STT pool. Cheap to share behind an `Arc`; dropping it lets the workers finish the queued
/// clips and exit.
pub struct SttPool {
    jobs: SyncSender<Job>,
    in_pool: Arc<AtomicUsize>,
    capacity: usize,
    config: SttConfig,
}

impl std::fmt::Debug for SttPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SttPool").field("config", &self.config).field("in_pool", &self.in_pool()).finish()
    }
}

impl SttPool {
    /// Loads the ggml model at `model_path` once and starts the workers.
    pub fn new(model_path: &Path, config: SttConfig) -> Result<Self, SpeechError> {
        if config.workers == 0 || config.threads_per_worker == 0 {
            return Err(SpeechError::InvalidInput("stt pool needs at least one worker and one thread".into()));
        }
        if config.language.is_empty() || config.language.contains('\0') {
            return Err(SpeechError::InvalidInput(format!("stt language {:?}", config.language)));
        }
        let threads = i32::try_from(config.threads_per_worker)
            .map_err(|_| SpeechError::InvalidInput("stt threads_per_worker too large".into()))?;
        let model_path = require("whisper model", model_path)?;
        // whisper.cpp and ggml log model loading and every inference to stderr unless hooked;
        // with the hook (whisper-rs's `tracing_backend`) they are `tracing` events instead.
        whisper_rs::install_logging_hooks();
        let mut context_params = WhisperContextParameters::default();
        context_params.flash_attn(config.flash_attn);
        let context = WhisperContext::new_with_params(&model_path, context_params)
            .map_err(|e| SpeechError::Whisper(format!("loading {}: {e:?}", model_path.display())))?;
        let text_token_end = context.token_eot();
        // Each worker tokenizes its clips' prompts with the shared model's vocabulary.
        let context = Arc::new(context);

        let capacity = config.workers + config.queue_depth;
        // Admission (`in_pool`) keeps at most `capacity` jobs in flight, so the channel never
        // fills and `try_send` fails only when the workers are gone.
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(capacity);
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..config.workers {
            // States share the context's weights (it is reference-counted inside whisper-rs).
            let state =
                context.create_state().map_err(|e| SpeechError::Whisper(format!("creating a whisper state: {e:?}")))?;
            let worker =
                Worker { state, context: Arc::clone(&context), threads, text_token_end, config: config.clone() };
            let language = config.language.clone();
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("stt-{index}"))
                .spawn(move || worker.run(&language, &queue))
                .map_err(|e| SpeechError::Whisper(format!("starting an stt worker: {e}")))?;
        }
        tracing::info!(
            model = %model_path.display(),
            workers = config.workers,
            threads_per_worker = config.threads_per_worker,
            queue_depth = config.queue_depth,
            "stt pool ready"
        );
        Ok(SttPool { jobs, in_pool: Arc::new(AtomicUsize::new(0)), capacity, config })
    }

    pub fn config(&self) -> &SttConfig {
        &self.config
    }

    /// Clips admitted and not yet answered (running or queued).
    pub fn in_pool(&self) -> usize {
        self.in_pool.load(Ordering::Acquire)
    }

    /// Transcribes 16 kHz mono samples in -1..1. Refused at once (`Overloaded`) when the pool is
    /// full. If the returned future is dropped before a worker takes the clip, the clip is
    /// skipped (a barge-in or hang-up makes the transcript moot).
    pub async fn transcribe(&self, audio_16k: Vec<f32>) -> Result<Transcript, SpeechError> {
        self.transcribe_with_prompt(audio_16k, None).await
    }

    /// `transcribe`, telling whisper what was said just before the clip: the question the
    /// caller is answering ("Is now a good time to talk?"). Whisper decodes the clip as the
    /// text that follows it, so it expects the answers such a question gets ("Not right now,
    /// no." rather than "That's right, so..."). Only the prompt's last `MAX_PROMPT_TOKENS`
    /// tokens are used. An empty prompt is no prompt. A transcript that continues the prompt
    /// (`echoes_prompt`: whisper's known failure on noise) or that whisper is unsure of is made
    /// again without it.
    pub async fn transcribe_with_prompt(
        &self,
        audio_16k: Vec<f32>,
        prompt: Option<String>,
    ) -> Result<Transcript, SpeechError> {
        let reply = self.submit(audio_16k, prompt)?;
        reply.await.map_err(|_| SpeechError::PoolClosed(POOL))?
    }

    /// `transcribe` for threads outside an async runtime (the CLI); blocks until the transcript
    /// is ready. Inside a runtime, use `transcribe` (this would block a reactor thread).
    pub fn transcribe_blocking(&self, audio_16k: Vec<f32>) -> Result<Transcript, SpeechError> {
        self.transcribe_blocking_with_prompt(audio_16k, None)
    }

    /// `transcribe_with_prompt` for threads outside an async runtime.
    pub fn transcribe_blocking_with_prompt(
        &self,
        audio_16k: Vec<f32>,
        prompt: Option<String>,
    ) -> Result<Transcript, SpeechError> {
        let reply = self.submit(audio_16k, prompt)?;
        futures::executor::block_on(reply).map_err(|_| SpeechError::PoolClosed(POOL))?
    }

    /// Validates and admits a clip; the receiver gets its result.
    fn submit(
        &self,
        audio: Vec<f32>,
        prompt: Option<String>,
    ) -> Result<oneshot::Receiver<Result<Transcript, SpeechError>>, SpeechError> {
        validate(&audio, self.config.max_clip)?;
        let prompt = prompt.filter(|p| !p.trim().is_empty());
        if prompt.as_ref().is_some_and(|p| p.contains('\0')) {
            return Err(SpeechError::InvalidInput("a prompt with a NUL character".into()));
        }
        let admitted = self
            .in_pool
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.capacity).then_some(n + 1))
            .is_ok();
        if !admitted {
            metrics::counter!("stt_rejected_total").increment(1);
            return Err(SpeechError::Overloaded(POOL));
        }
        let slot = Slot(Arc::clone(&self.in_pool));
        let (reply, result) = oneshot::channel();
        let job = Job { audio, prompt, reply, admitted: Instant::now(), _slot: slot };
        match self.jobs.try_send(job) {
            Ok(()) => Ok(result),
            // Unreachable while admission holds; shed the clip rather than block.
            Err(TrySendError::Full(_)) => {
                metrics::counter!("stt_rejected_total").increment(1);
                Err(SpeechError::Overloaded(POOL))
            }
            Err(TrySendError::Disconnected(_)) => Err(SpeechError::PoolClosed(POOL)),
        }
    }
}

/// Empty, non-finite or too long audio is refused before it takes a place in the queue.
fn validate(audio: &[f32], max_clip: Duration) -> Result<(), SpeechError> {
    if audio.is_empty() {
        return Err(SpeechError::InvalidInput("empty audio".into()));
    }
    if let Some(index) = audio.iter().position(|s| !s.is_finite()) {
        return Err(SpeechError::InvalidInput(format!("audio sample {index} is not a finite number")));
    }
    let max_samples = max_clip.as_secs_f64() * f64::from(SAMPLE_RATE);
    if audio.len() as f64 > max_samples {
        return Err(SpeechError::InvalidInput(format!(
            "audio is {:.1} s long, the limit is {:.1} s",
            audio.len() as f64 / f64::from(SAMPLE_RATE),
            max_clip.as_secs_f64()
        )));
    }
    Ok(())
}

/// The encoder context for a clip of `samples` samples: `None` means the model's full window.
pub fn audio_ctx_for(samples: usize, margin: u32) -> Option<u32> {
    let secs = samples as f64 / f64::from(SAMPLE_RATE);
    let ctx = (secs * AUDIO_CTX_PER_SEC).ceil() as u32 + margin;
    (ctx < FULL_AUDIO_CTX).then_some(ctx)
}

/// Most tokens a window of `samples` samples may decode to: speech runs at about 3 words
/// (4 tokens) a second, so 8 a second plus a sentence's worth leaves room for fast talkers and
/// cuts a repetition loop long before whisper's own limit (224 tokens).
pub fn max_tokens_for(samples: usize) -> u32 {
    let secs = (samples as f64 / f64::from(SAMPLE_RATE)).min(30.0);
    (secs * 8.0).ceil() as u32 + 16
}

/// Level of the loudest 20 ms of the clip, in dBFS (RMS; -inf for digital silence).
pub fn loudest_frame_dbfs(audio: &[f32]) -> f32 {
    let frame = (SAMPLE_RATE / 50) as usize;
    let loudest = audio
        .chunks(frame)
        .map(|chunk| chunk.iter().map(|s| s * s).sum::<f32>() / chunk.len() as f32)
        .fold(0.0f32, f32::max);
    10.0 * loudest.log10()
}

/// Most prompt tokens given to whisper: a question's worth. Prompt tokens cost decoder time,
/// and what was said last matters most, so a longer prompt keeps its end.
pub const MAX_PROMPT_TOKENS: usize = 64;

/// One worker thread's whisper state and settings.
struct Worker {
    state: WhisperState,
    context: Arc<WhisperContext>,
    threads: i32,
    text_token_end: i32,
    config: SttConfig,
}

impl Worker {
    fn run(mut self, language: &str, queue: &Mutex<Receiver<Job>>) {
        // whisper-rs copies the language into a C string it never frees, so the parameters are
        // built once per worker and cloned per clip (a clone shares that string).
        let template = self.params(language);
        loop {
            // The lock is held only while waiting for the next job, never while transcribing.
            let job = {
                let queue = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                queue.recv()
            };
            let Ok(job) = job else { return }; // the pool was dropped and the queue drained
            let Job { audio, prompt, reply, admitted, _slot } = job;
            if reply.is_closed() {
                continue;
            }
            let result = self.transcribe(&template, audio, prompt.as_deref());
            // Give the place back before answering, so a caller that resubmits right away fits.
            drop(_slot);
            metrics::histogram!("stt_latency_seconds").record(admitted.elapsed().as_secs_f64());
            // The caller may have gone away meanwhile; nothing to do then.
            let _ = reply.send(result);
        }
    }

    fn params<'a>(&self, language: &'a str) -> FullParams<'a, 'static> {
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads);
        params.set_language(Some(language));
        params.set_no_context(true);
        params.set_no_timestamps(!self.config.segment_timestamps);
        params.set_single_segment(!self.config.segment_timestamps);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        if !self.config.temperature_fallback {
            params.set_temperature_inc(0.0);
        }
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params
    }

    /// The prompt as whisper's tokens: its last `MAX_PROMPT_TOKENS`, after a space as OpenAI's
    /// whisper tokenizes an initial prompt (a word inside running text, " Hello", is another
    /// token than "Hello" at the start).
    fn prompt_tokens(&self, prompt: &str) -> Result<Vec<std::ffi::c_int>, SpeechError> {
        // Never more tokens than bytes: with room for all of them whisper-rs cannot be handed a
        // too-many-tokens result (it reads that as a length).
        let text = format!(" {}", prompt.trim());
        let tokens = self
            .context
            .tokenize(&text, text.len() + 1)
            .map_err(|e| SpeechError::InvalidInput(format!("tokenizing the prompt: {e:?}")))?;
        Ok(tokens[tokens.len().saturating_sub(MAX_PROMPT_TOKENS)..].to_vec())
    }

    fn transcribe(
        &mut self,
        template: &FullParams<'_, 'static>,
        clip: Vec<f32>,
        prompt: Option<&str>,
    ) -> Result<Transcript, SpeechError> {
        if let Some(threshold) = self.config.silence_dbfs
            && loudest_frame_dbfs(&clip) < threshold
        {
            return Ok(Transcript { text: String::new(), segments: Vec::new(), confidence: 0.0 });
        }
        let clip_len = clip.len();
        let samples_in = |d: Duration| (d.as_secs_f64() * f64::from(SAMPLE_RATE)) as usize;
        let lead_in = samples_in(self.config.lead_in);
        let audio = if lead_in == 0 && clip.len() >= samples_in(self.config.min_clip) {
            clip
        } else {
            let mut padded = Vec::with_capacity((lead_in + clip.len()).max(samples_in(self.config.min_clip)));
            padded.resize(lead_in, 0.0);
            padded.extend_from_slice(&clip);
            padded.resize(padded.len().max(samples_in(self.config.min_clip)), 0.0);
            padded
        };
        // whisper-rs's set_initial_prompt leaks a C string per call; tokens are borrowed instead.
        let prompt_tokens = prompt.map(|p| self.prompt_tokens(p)).transpose()?.unwrap_or_default();
        let heard = self.decode(template, &audio, &prompt_tokens, lead_in, clip_len)?;
        match prompt {
            // Whisper given a prompt and little to hear makes up text in the prompt's words ("I'm
            // not a good time." for line hiss after "Is now a good time to talk?", at a mean
            // token probability of 0.1): such a clip is heard again without the prompt, so a
            // prompt never makes noise read worse than it would without one.
            Some(prompt) if heard.confidence < PROMPTED_MIN_CONFIDENCE || echoes_prompt(prompt, &heard.text) => {
                self.decode(template, &audio, &[], lead_in, clip_len)
            }
            _ => Ok(heard),
        }
    }

    /// One whisper pass over `audio` (the clip with its lead-in and padding).
    fn decode(
        &mut self,
        template: &FullParams<'_, 'static>,
        audio: &[f32],
        prompt_tokens: &[std::ffi::c_int],
        lead_in: usize,
        clip_len: usize,
    ) -> Result<Transcript, SpeechError> {
        let mut params = template.clone();
        if !prompt_tokens.is_empty() {
            params.set_tokens(prompt_tokens);
        }
        if self.config.shrink_audio_ctx
            && let Some(ctx) = audio_ctx_for(audio.len(), self.config.audio_ctx_margin)
        {
            params.set_audio_ctx(ctx as i32);
        }
        if !self.config.segment_timestamps {
            // Ends a decode stuck repeating itself (one segment per window in this mode).
            params.set_max_tokens(max_tokens_for(audio.len()) as i32);
        }
        self.state.full(params, audio).map_err(|e| SpeechError::Whisper(format!("transcribing: {e:?}")))?;
        Ok(self.collect(lead_in, clip_len))
    }

    /// Reads the segments whisper produced, drops non-speech markers and empty segments.
    /// Times are given on the caller's clip: without the lead-in, and at most its end.
    fn collect(&self, lead_in: usize, clip_len: usize) -> Transcript {
        let ms = |samples: usize| samples as u64 * 1000 / u64::from(SAMPLE_RATE);
        let (lead_in_ms, clip_ms) = (ms(lead_in), ms(clip_len));
        let mut segments = Vec::new();
        let (mut p_sum, mut p_count) = (0.0f64, 0usize);
        for segment in self.state.as_iter() {
            let Ok(raw) = segment.to_str_lossy() else { continue };
            let text = collapse_repetition(&strip_markers(&raw));
            if text.is_empty() || repeats_previous(segments.last().map(|s: &Segment| s.text.as_str()), &text) {
                continue;
            }
            let (mut seg_sum, mut seg_count) = (0.0f64, 0usize);
            for index in 0..segment.n_tokens() {
                let Some(token) = segment.get_token(index) else { continue };
                // Ids from end-of-text up are special and timestamp tokens, not words.
                if token.token_id() < self.text_token_end {
                    seg_sum += f64::from(token.token_probability());
                    seg_count += 1;
                }
            }
            p_sum += seg_sum;
            p_count += seg_count;
            let to_ms = |t: i64| clip_ms_of(t, lead_in_ms, clip_ms);
            segments.push(Segment {
                start_ms: to_ms(segment.start_timestamp()),
                end_ms: to_ms(segment.end_timestamp()),
                text,
                confidence: mean(seg_sum, seg_count),
                no_speech_prob: segment.no_speech_probability(),
            });
        }
        // A loop may also run across segments ("Yes speaking." as seven segments).
        let text = collapse_repetition(&segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" "));
        Transcript { text, segments, confidence: mean(p_sum, p_count) }
    }
}

/// A whisper time (10 ms units from the start of what whisper heard, lead-in included) on the
/// caller's clip: without the lead-in, within the clip.
fn clip_ms_of(whisper_time: i64, lead_in_ms: u64, clip_ms: u64) -> u32 {
    let ms = u64::try_from(whisper_time).unwrap_or(0).saturating_mul(10);
    ms.saturating_sub(lead_in_ms).min(clip_ms).try_into().unwrap_or(u32::MAX)
}

fn mean(sum: f64, count: usize) -> f32 {
    if count == 0 { 0.0 } else { (sum / count as f64) as f32 }
}

/// Removes what whisper writes for non-speech (`[BLANK_AUDIO]`, `[MUSIC]`, `(silence)`,
/// `[ Silence ]`, `(laughs)`, `*cough*`, `♪`): any bracketed, parenthesised or starred span and
/// music notes. Then collapses whitespace and trims. Spoken words are never written that way.
pub fn strip_markers(text: &str) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut closing: Option<char> = None;
    for c in text.chars() {
        match closing {
            Some(close) if c == close => closing = None,
            Some(_) => {}
            None => match c {
                '[' => closing = Some(']'),
                '(' => closing = Some(')'),
                '*' => closing = Some('*'),
                '♪' | '♫' | '♬' => {}
                _ => kept.push(c),
            },
        }
    }
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts decoding loops short, wherever they are in the text: a phrase of one or more words
/// said three or more times back to back is kept once ("Yes speaking. Yes speaking. Yes
/// speaking." -> "Yes speaking."; "speaking, speaking, speaking," -> "speaking,"), and so is a
/// phrase of three or more words said twice ("What your country can do for you. What your
/// country can do for you." -> once). A copy cut off at the end of the text (by the token
/// budget) goes with its loop. Words are compared without case and punctuation. Whisper falls
/// into such loops when it cannot see where the audio ends, which a shrunk context makes more
/// likely; no turn may repeat a phrase more than twice. A short phrase said twice ("thank you
/// thank you", "no, no") is speech and stays, as do repeated digits (a phone number).
pub fn collapse_repetition(text: &str) -> String {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    // Collapsing one loop can line up another ("yes yes yes speaking" said three times).
    while let Some(shorter) = collapse_first_loop(&words) {
        words = shorter;
    }
    words.join(" ")
}

/// `words` with its first loop (see `collapse_repetition`) cut to one copy, if it has one.
fn collapse_first_loop<'a>(words: &[&'a str]) -> Option<Vec<&'a str>> {
    let keys: Vec<String> = words.iter().map(|w| normalize_words(w).concat()).collect();
    (0..keys.len()).find_map(|start| {
        let (unit, copies) = loop_at(&keys, start)?;
        let mut end = start + unit * copies;
        let rest = &keys[end..];
        if rest.len() < unit && rest == &keys[start..start + rest.len()] {
            end = keys.len();
        }
        let mut kept = words[..start + unit].to_vec();
        kept.extend_from_slice(&words[end..]);
        Some(kept)
    })
}

/// The loop starting at `start` that covers the most words, the shortest phrase of those:
/// (its words, copies back to back). "yes yes yes speaking" said three times is that phrase
/// three times, not "yes" three times followed by more.
fn loop_at(keys: &[String], start: usize) -> Option<(usize, usize)> {
    let loops = (1..=(keys.len() - start) / 2).filter_map(|unit| {
        let phrase = &keys[start..start + unit];
        // Punctuation alone, or digits: "0 0 0" in a phone number is not a loop.
        if phrase.iter().all(|k| k.chars().all(|c| c.is_ascii_digit())) {
            return None;
        }
        let copies = keys[start..].chunks_exact(unit).take_while(|chunk| *chunk == phrase).count();
        let loops = if unit >= 3 { copies >= 2 } else { copies >= 3 };
        loops.then_some((unit, copies))
    });
    // `max_by_key` keeps the last of equals: compare shorter phrases as greater.
    loops.max_by_key(|&(unit, copies)| (unit * copies, std::cmp::Reverse(unit)))
}

/// A prompted transcript less sure than this (mean token probability) is made again without
/// the prompt: text made up from line hiss through a prompt came at 0.1, while clear answers
/// mostly decode above 0.5 (tests/speech_stt.rs, benches/stt_phone.rs).
const PROMPTED_MIN_CONFIDENCE: f32 = 0.35;

/// Words in a row shared with the prompt that make a transcript an echo of it.
const ECHO_WORDS: usize = 4;

/// Whether `text` says `ECHO_WORDS` or more words in a row of `prompt` (case and punctuation
/// ignored): whisper continuing its prompt rather than hearing the caller. An answer that
/// takes up a few of the question's words ("now is good") is not one.
pub fn echoes_prompt(prompt: &str, text: &str) -> bool {
    let (prompt, text) = (normalize_words(prompt), normalize_words(text));
    text.windows(ECHO_WORDS).any(|run| prompt.windows(ECHO_WORDS).any(|asked| asked == run))
}

/// Whether a segment only says the previous one again: the same loop as `collapse_repetition`
/// catches inside a segment, spread over two (heard through a phone line: "No, I am not
/// interested. Thank you." twice). Like there, a phrase under three words may be speech.
fn repeats_previous(previous: Option<&str>, text: &str) -> bool {
    let words = normalize_words(text);
    words.len() >= 3 && previous.is_some_and(|previous| normalize_words(previous) == words)
}

/// Lowercase words without punctuation, for comparing transcripts ("Ask not!" -> "ask not").
/// Apostrophes inside words are kept ("don't"); hyphens split words.
pub fn normalize_words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '-')
        .map(|word| {
            word.chars().filter(|c| c.is_alphanumeric() || *c == '\'').flat_map(char::to_lowercase).collect::<String>()
        })
        .map(|word| word.trim_matches('\'').to_owned())
        .filter(|word| !word.is_empty())
        .collect()
}

/// Word error rate of `hypothesis` against `reference`, both normalised with
/// `normalize_words`: (substitutions + deletions + insertions) / reference words, by
/// Levenshtein distance over words. An empty reference gives 0 for an empty hypothesis, else 1.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let reference = normalize_words(reference);
    let hypothesis = normalize_words(hypothesis);
    if reference.is_empty() {
        return if hypothesis.is_empty() { 0.0 } else { 1.0 };
    }
    // One row of the edit-distance table at a time.
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    let mut current = vec![0; hypothesis.len() + 1];
    for (i, ref_word) in reference.iter().enumerate() {
        current[0] = i + 1;
        for (j, hyp_word) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(ref_word != hyp_word);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[hypothesis.len()] as f64 / reference.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_dropped_and_words_kept() {
        assert_eq!(strip_markers(" [BLANK_AUDIO]"), "");
        assert_eq!(strip_markers("[ Silence ] (silence) [MUSIC] ♪ ♪"), "");
        assert_eq!(strip_markers(" Hello (laughs) there. *cough* [BLANK_AUDIO]"), "Hello there.");
        assert_eq!(strip_markers("  ask not  what\tyour country "), "ask not what your country");
        // An unclosed bracket drops the rest: it is whisper's marker cut off by the window.
        assert_eq!(strip_markers("yes [BLANK_AUD"), "yes");
    }

    #[test]
    fn a_segment_repeating_the_previous_one_is_a_loop() {
        let said = "No, I am not interested. Thank you.";
        assert!(repeats_previous(Some(said), "No, I am not interested, thank you"));
        assert!(!repeats_previous(None, said));
        assert!(!repeats_previous(Some(said), "No, I am not interested."));
        // Short phrases said again are ordinary speech.
        assert!(!repeats_previous(Some("Hello?"), "Hello?"));
        assert!(!repeats_previous(Some("Yes, please."), "Yes, please."));
    }

    #[test]
    fn decoding_loops_are_cut_to_one_copy() {
        let looped = "What your country can do for you. What your country can do for you. What your country can";
        assert_eq!(collapse_repetition(looped), "What your country can do for you.");
        assert_eq!(collapse_repetition("Hello. I want to pay. I want to pay. I want to pay."), "Hello. I want to pay.");
        assert_eq!(collapse_repetition("Yes, please. Yes, please. Yes, please. Yes,"), "Yes, please.");
        // Speech that repeats a short phrase once, or says something once, is left alone.
        assert_eq!(collapse_repetition("thank you thank you"), "thank you thank you");
        assert_eq!(collapse_repetition("No, no. Not today."), "No, no. Not today.");
        let jfk = "ask not what your country can do for you ask what you can do for your country";
        assert_eq!(collapse_repetition(jfk), jfk);
        assert_eq!(collapse_repetition(""), "");
        assert_eq!(collapse_repetition("Yes."), "Yes.");
    }

    #[test]
    fn loops_of_any_length_anywhere_are_cut() {
        // Seen on a simulator call: one caller turn, seven times the same two words.
        let seven = ["Yes speaking."; 7].join(" ");
        assert_eq!(collapse_repetition(&seven), "Yes speaking.");
        assert_eq!(collapse_repetition("Yes. Yes. Yes. speaking, speaking, speaking,"), "Yes. speaking,");
        // In the middle of a turn, with what follows kept.
        assert_eq!(
            collapse_repetition("I think I think I think I am interested in that."),
            "I think I am interested in that."
        );
        assert_eq!(collapse_repetition("no no no no no no, thanks"), "no thanks");
        // Punctuation and case do not hide a loop.
        assert_eq!(collapse_repetition("Goodbye! goodbye, GOODBYE... Goodbye?"), "Goodbye!");
        // A long phrase said twice is a loop too.
        assert_eq!(
            collapse_repetition("Please call me back. Please call me back. Thanks."),
            "Please call me back. Thanks."
        );
        // Collapsing one loop can reveal another.
        assert_eq!(collapse_repetition(&["yes yes yes speaking"; 3].join(" ")), "yes speaking");
    }

    #[test]
    fn no_phrase_is_left_repeated_more_than_twice() {
        let phrases = ["ok", "yes speaking", "not right now", "ring me back in an hour", "bye bye"];
        for phrase in phrases {
            for times in 1..=8 {
                let said = vec![phrase; times].join(", ");
                let kept = normalize_words(&collapse_repetition(&said)).join(" ");
                let once = normalize_words(phrase).join(" ");
                let copies = kept.matches(once.as_str()).count();
                assert!(copies <= 2 && !kept.is_empty(), "{said:?} -> {kept:?}");
            }
        }
    }

    #[test]
    fn digits_are_not_a_loop() {
        assert_eq!(collapse_repetition("My number is 5 5 5 0 1 0 0"), "My number is 5 5 5 0 1 0 0");
        assert_eq!(collapse_repetition("... ... ..."), "... ... ...");
    }

    #[test]
    fn a_transcript_continuing_its_prompt_is_an_echo() {
        let asked = "When would be a better time to call you back?";
        assert!(echoes_prompt(asked, "I'm not going to be a better time to call you back."));
        assert!(echoes_prompt(asked, "Better time, to call you..."));
        assert!(!echoes_prompt(asked, "Call me back tomorrow at three."));
        assert!(!echoes_prompt(asked, "A better time? Tomorrow."));
        assert!(!echoes_prompt("", "any time"));
    }

    #[test]
    fn normalised_words_ignore_case_and_punctuation() {
        assert_eq!(
            normalize_words("And so, my fellow Americans: ask NOT!"),
            ["and", "so", "my", "fellow", "americans", "ask", "not"]
        );
        assert_eq!(normalize_words("Don't -- re-enter 'quoted'"), ["don't", "re", "enter", "quoted"]);
        assert!(normalize_words(" ... ").is_empty());
    }

    #[test]
    fn word_error_rate_counts_edits_per_reference_word() {
        assert_eq!(word_error_rate("ask not what your country", "Ask not, what your country."), 0.0);
        // One substitution in four words.
        assert_eq!(word_error_rate("pay my bill now", "pay my building now"), 0.25);
        // One deletion and one insertion.
        assert_eq!(word_error_rate("a b c d", "a c d e"), 0.5);
        assert_eq!(word_error_rate("one two", ""), 1.0);
        assert_eq!(word_error_rate("", ""), 0.0);
        assert_eq!(word_error_rate("", "noise"), 1.0);
    }

    #[test]
    fn audio_ctx_scales_with_the_clip_and_caps_at_the_full_window() {
        assert_eq!(audio_ctx_for(16_000, 64), Some(114));
        assert_eq!(audio_ctx_for(32_000, 64), Some(164));
        assert_eq!(audio_ctx_for(16_001, 0), Some(51));
        assert_eq!(audio_ctx_for(29 * 16_000, 64), None);
        assert_eq!(audio_ctx_for(60 * 16_000, 64), None);
    }

    #[test]
    fn whisper_times_are_put_on_the_callers_clip() {
        assert_eq!(clip_ms_of(123, 0, 11_000), 1_230);
        assert_eq!(clip_ms_of(123, 200, 11_000), 1_030);
        // Inside the lead-in, or padding past the clip's end.
        assert_eq!(clip_ms_of(10, 200, 11_000), 0);
        assert_eq!(clip_ms_of(1_150, 200, 11_000), 11_000);
        assert_eq!(clip_ms_of(-5, 0, 11_000), 0);
    }

    #[test]
    fn token_budget_grows_with_the_window() {
        assert_eq!(max_tokens_for(16_000), 24);
        assert_eq!(max_tokens_for(16_000 * 11), 104);
        assert_eq!(max_tokens_for(16_000 * 90), 256);
    }

    #[test]
    fn loudness_is_the_loudest_frame() {
        assert_eq!(loudest_frame_dbfs(&[0.0; 16_000]), f32::NEG_INFINITY);
        let mut clip = vec![0.001f32; 16_000]; // -60 dBFS
        assert!((loudest_frame_dbfs(&clip) + 60.0).abs() < 0.01);
        // One loud 20 ms frame (a full-scale square wave: 0 dBFS) decides.
        clip[320..640].iter_mut().enumerate().for_each(|(i, s)| *s = if i % 2 == 0 { 1.0 } else { -1.0 });
        assert!(loudest_frame_dbfs(&clip).abs() < 0.01);
    }

    #[test]
    fn default_sizing_is_a_single_threaded_worker_per_core() {
        let two = SttConfig::for_cores(2);
        assert_eq!((two.workers, two.threads_per_worker, two.queue_depth), (2, 1, 4));
        let none = SttConfig::for_cores(0);
        assert_eq!((none.workers, none.threads_per_worker), (1, 1));
    }

    #[test]
    fn bad_audio_is_refused_before_queueing() {
        let max = Duration::from_secs(2);
        assert!(matches!(validate(&[], max), Err(SpeechError::InvalidInput(_))));
        assert!(matches!(validate(&[0.0, f32::NAN], max), Err(SpeechError::InvalidInput(_))));
        assert!(matches!(validate(&[f32::INFINITY], max), Err(SpeechError::InvalidInput(_))));
        assert!(matches!(validate(&vec![0.0; 32_001], max), Err(SpeechError::InvalidInput(_))));
        assert!(validate(&vec![0.0; 32_000], max).is_ok());
    }
}
