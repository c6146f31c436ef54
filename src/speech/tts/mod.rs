//! Text to speech: Piper voices (VITS through ONNX Runtime) with espeak-ng phonemes, in a pool
//! of worker threads behind a bounded queue, sentence by sentence, with an LRU cache.
//!
//! A reply is split into sentences (`text`); each is phonemized by the `espeak-ng` command line
//! (`phonemize`, one long-lived process per worker), mapped to the voice's phoneme ids and run
//! through the voice's model (`voice`). Each sentence's audio is sent as soon as it exists, so
//! a caller hears the first sentence while the rest is synthesized (`TtsStream`). Sentences
//! are cached by (voice, text) (`cache`): a template's fixed lines are synthesized once, and
//! `prewarm` fills the cache ahead of need.
//!
//! Pool: each worker owns one ONNX session per voice it has used (a session cannot run on two
//! threads at once) and runs one reply at a time on `threads_per_worker` intra-op threads.
//! Admission is decided at once: at most `queue_depth` replies wait for a worker, and one more
//! is refused with `SpeechError::Overloaded("tts")` (counted in `tts_rejected_total`).
//! A reply whose sentences are all cached never enters the queue.
//!
//! Voices are pluggable: any Piper voice (`NAME.onnx` + `NAME.onnx.json`) in the voices
//! directory (`models/voices` by default) can be named per request; its config is read on
//! first use and each worker loads its session on first use (~1 s), so a voice used often
//! should be the default (loaded at start) or warmed with `prewarm`.
//!
//! Metrics: `tts_rejected_total`, `tts_cache_hits_total`, `tts_cache_misses_total` (counters),
//! `tts_first_chunk_seconds` (admission to first chunk of a reply that needed synthesis) and
//! `tts_sentence_seconds` (one sentence's phonemization plus inference) histograms.

pub mod cache;
pub mod phonemize;
pub mod text;
pub mod voice;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

pub use self::cache::{AudioCache, CacheStats, CachedAudio};
pub use self::phonemize::{Espeak, EspeakMode};
pub use self::text::Sentence;
pub use self::voice::{PhonemeType, SessionOptions, VoiceConfig, VoiceSession};
use super::models::{DEFAULT_VOICE, require};
use super::{ModelPaths, SpeechError, onnx};

/// The name in `SpeechError::Overloaded` / `PoolClosed`.
const POOL: &str = "tts";

/// How the pool is sized and how it synthesizes.
#[derive(Debug, Clone)]
pub struct TtsConfig {
    /// Worker threads: replies synthesized at the same time.
    pub workers: usize,
    /// ONNX Runtime intra-op threads per worker.
    pub threads_per_worker: usize,
    /// Replies that may wait for a free worker; one more is refused with `Overloaded`.
    pub queue_depth: usize,
    /// The voice used when a request names none; loaded by every worker at start.
    pub default_voice: String,
    /// Where voices are (`NAME.onnx` + `NAME.onnx.json`); `None`: `<models>/voices`.
    pub voices_dir: Option<PathBuf>,
    /// Cache budget in bytes (samples are 2 bytes each); 0 disables the cache.
    pub cache_bytes: usize,
    /// The espeak-ng program (`espeak-ng`, looked up on `PATH`).
    pub espeak_program: PathBuf,
    pub espeak_mode: EspeakMode,
    /// Longest wait for espeak-ng's answer before the process is replaced.
    pub espeak_timeout: Duration,
    /// Let ONNX Runtime's idle threads spin (a little faster, steals CPU from other pools).
    pub spinning: bool,
    /// Peak level of each sentence's audio, as a fraction of full scale (Piper uses 1.0; a
    /// little headroom keeps resampling to 8 kHz from clipping).
    pub peak: f32,
    /// Longer texts are refused with `InvalidInput` (a phone reply is a few sentences).
    pub max_text_chars: usize,
    /// Resample every sentence to this rate in the worker, before it is cached: a call's
    /// lines are then cached at the line's rate (8 kHz), so a cache hit costs no resampling.
    /// `None`: the voice's own rate.
    pub output_rate: Option<u32>,
}

impl TtsConfig {
    /// Sizing for `cores` cores: workers of 2 intra-op threads (the first sentence is out
    /// sooner on 2 threads, and replies are latency-bound), one worker per pair of cores, and
    /// two waiting replies per worker.
    pub fn for_cores(cores: usize) -> Self {
        let cores = cores.max(1);
        let threads_per_worker = cores.min(2);
        let workers = (cores / threads_per_worker).max(1);
        TtsConfig {
            workers,
            threads_per_worker,
            queue_depth: workers * 2,
            default_voice: DEFAULT_VOICE.to_owned(),
            voices_dir: None,
            cache_bytes: 64 << 20,
            espeak_program: PathBuf::from("espeak-ng"),
            espeak_mode: EspeakMode::Persistent,
            espeak_timeout: Duration::from_secs(5),
            spinning: false,
            peak: 0.9,
            max_text_chars: 5_000,
            output_rate: None,
        }
    }
}

impl Default for TtsConfig {
    fn default() -> Self {
        Self::for_cores(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// One sentence of audio.
#[derive(Debug, Clone)]
pub struct AudioChunk {
    /// Mono PCM16 at `sample_rate` (the voice's rate, e.g. 22 050 Hz, or the pool's
    /// `output_rate`).
    pub samples: Arc<[i16]>,
    pub sample_rate: u32,
    /// Position of the sentence in the reply (0-based).
    pub index: usize,
    /// The sentence this is (for transcripts and for knowing what a barge-in cut off).
    pub text: Arc<str>,
    /// Whether it came from the cache.
    pub cached: bool,
}

impl AudioChunk {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.sample_rate))
    }
}

/// A whole reply's audio.
#[derive(Debug, Clone)]
pub struct Synthesis {
    pub samples: Vec<i16>,
    pub sample_rate: u32,
    /// Sentences it was made of, and how many of them came from the cache.
    pub sentences: usize,
    pub cached: usize,
}

impl Synthesis {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.sample_rate))
    }

    fn collect(
        chunks: impl IntoIterator<Item = Result<AudioChunk, SpeechError>>,
        sample_rate: u32,
    ) -> Result<Self, SpeechError> {
        let mut out = Synthesis { samples: Vec::new(), sample_rate, sentences: 0, cached: 0 };
        for chunk in chunks {
            let chunk = chunk?;
            out.samples.extend_from_slice(&chunk.samples);
            out.sentences += 1;
            out.cached += usize::from(chunk.cached);
        }
        Ok(out)
    }
}

type ChunkResult = Result<AudioChunk, SpeechError>;

/// A reply's audio, one chunk per sentence, in order. Dropping it stops the synthesis of the
/// sentences not yet started (barge-in).
#[derive(Debug)]
pub struct TtsStream {
    rx: mpsc::Receiver<ChunkResult>,
    sample_rate: u32,
    sentences: usize,
    cancel: Arc<AtomicBool>,
}

impl TtsStream {
    /// The next sentence's audio; `None` after the last one (or after an error).
    pub async fn recv(&mut self) -> Option<ChunkResult> {
        self.rx.recv().await
    }

    /// The next chunk if it is ready now.
    pub fn try_recv(&mut self) -> Option<ChunkResult> {
        self.rx.try_recv().ok()
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Sentences the reply was split into (the number of chunks, barring errors).
    pub fn sentences(&self) -> usize {
        self.sentences
    }

    /// Waits for every chunk and concatenates them.
    pub async fn collect(mut self) -> Result<Synthesis, SpeechError> {
        let mut chunks = Vec::with_capacity(self.sentences);
        while let Some(chunk) = self.recv().await {
            let failed = chunk.is_err();
            chunks.push(chunk);
            if failed {
                break;
            }
        }
        Synthesis::collect(chunks, self.sample_rate)
    }
}

impl futures::Stream for TtsStream {
    type Item = ChunkResult;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for TtsStream {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// The blocking counterpart of `TtsStream`: an iterator of sentence chunks for threads that
/// are not async (the CLI, benches). Dropping it stops the synthesis too.
#[derive(Debug)]
pub struct TtsBlockingStream {
    rx: Receiver<ChunkResult>,
    sample_rate: u32,
    sentences: usize,
    cancel: Arc<AtomicBool>,
    failed: bool,
}

impl TtsBlockingStream {
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn sentences(&self) -> usize {
        self.sentences
    }

    /// The next chunk if it is ready now.
    pub fn try_next(&mut self) -> Option<ChunkResult> {
        if self.failed { None } else { self.rx.try_recv().ok() }
    }
}

impl Iterator for TtsBlockingStream {
    type Item = ChunkResult;

    fn next(&mut self) -> Option<ChunkResult> {
        if self.failed {
            return None;
        }
        let item = self.rx.recv().ok()?;
        self.failed = item.is_err();
        Some(item)
    }
}

impl Drop for TtsBlockingStream {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// A `prewarm` in progress. Dropping it does not cancel it.
#[derive(Debug)]
pub struct Prewarm {
    rx: oneshot::Receiver<Result<usize, SpeechError>>,
}

impl Prewarm {
    /// Sentences synthesized into the cache (those already cached are not counted).
    pub async fn wait(self) -> Result<usize, SpeechError> {
        self.rx.await.unwrap_or(Err(SpeechError::PoolClosed(POOL)))
    }

    /// `wait` for threads outside an async runtime (it panics inside one, as tokio's
    /// `blocking_recv` does).
    pub fn wait_blocking(self) -> Result<usize, SpeechError> {
        self.rx.blocking_recv().unwrap_or(Err(SpeechError::PoolClosed(POOL)))
    }
}

/// Where a job's chunks go.
enum Sink {
    Async(mpsc::Sender<ChunkResult>),
    Blocking(SyncSender<ChunkResult>),
    /// Cache only; reports how many sentences it synthesized.
    Prewarm {
        done: Option<oneshot::Sender<Result<usize, SpeechError>>>,
        synthesized: usize,
    },
}

impl Sink {
    /// Sends a chunk; false when nobody listens any more. Channels are sized to the reply's
    /// sentence count, so a send never waits for a slow reader.
    fn send(&mut self, item: ChunkResult) -> bool {
        match self {
            Sink::Async(tx) => tx.try_send(item).is_ok(),
            Sink::Blocking(tx) => tx.try_send(item).is_ok(),
            Sink::Prewarm { done, synthesized } => match item {
                Ok(chunk) => {
                    *synthesized += usize::from(!chunk.cached);
                    true
                }
                Err(e) => {
                    if let Some(done) = done.take() {
                        let _ = done.send(Err(e));
                    }
                    false
                }
            },
        }
    }

    fn finish(self) {
        if let Sink::Prewarm { done: Some(done), synthesized } = self {
            let _ = done.send(Ok(synthesized));
        }
    }
}

struct Job {
    voice: Arc<VoiceConfig>,
    /// (index in the reply, sentence)
    sentences: Vec<(usize, Sentence)>,
    sink: Sink,
    cancel: Arc<AtomicBool>,
    admitted: Instant,
    /// The submitter already found the first sentence missing from the cache.
    first_missed: bool,
}

struct Shared {
    config: TtsConfig,
    voices_dir: PathBuf,
    environment: &'static ort::environment::Environment,
    voices: Mutex<HashMap<String, Arc<VoiceConfig>>>,
    cache: AudioCache,
}

impl Shared {
    /// The rate a voice's audio leaves the pool at.
    fn output_rate(&self, voice: &VoiceConfig) -> u32 {
        self.config.output_rate.unwrap_or(voice.sample_rate)
    }

    /// A voice's config, read and checked on first use.
    fn voice(&self, name: &str) -> Result<Arc<VoiceConfig>, SpeechError> {
        check_voice_name(name)?;
        let mut voices = self.voices.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(voice) = voices.get(name) {
            return Ok(voice.clone());
        }
        let (model, json) = voice_files(&self.voices_dir, name);
        require("Piper voice model", &model)?;
        require("Piper voice config", &json)?;
        let voice = Arc::new(VoiceConfig::load(name, &json)?);
        voices.insert(name.to_owned(), voice.clone());
        Ok(voice)
    }
}

fn voice_files(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!("{name}.onnx")), dir.join(format!("{name}.onnx.json")))
}

/// Voice names are file stems in the voices directory: no separators, no leading dot.
fn check_voice_name(name: &str) -> Result<(), SpeechError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok { Ok(()) } else { Err(SpeechError::InvalidInput(format!("invalid voice name {name:?}"))) }
}

/// The TTS pool. Cheap to share behind an `Arc`; dropping it stops the workers after their
/// current reply.
pub struct TtsPool {
    shared: Arc<Shared>,
    queue: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for TtsPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtsPool").field("config", &self.shared.config).finish()
    }
}

impl TtsPool {
    /// Loads ONNX Runtime from `paths`, the default voice in every worker, and starts one
    /// espeak-ng per worker. Fails if any of them is missing or broken (`MissingModel`,
    /// `VoiceConfig`, `Onnx`, or `Phonemizer` with an install hint for espeak-ng).
    pub fn new(paths: &ModelPaths, config: TtsConfig) -> Result<Self, SpeechError> {
        let environment = onnx::ensure_loaded(&paths.onnxruntime())?;
        if !(config.peak > 0.0 && config.peak <= 1.0) {
            return Err(SpeechError::InvalidInput(format!("peak {} is not in (0, 1]", config.peak)));
        }
        let voices_dir = config.voices_dir.clone().unwrap_or_else(|| paths.root.join("voices"));
        let shared = Arc::new(Shared {
            cache: AudioCache::new(config.cache_bytes),
            voices: Mutex::new(HashMap::new()),
            voices_dir,
            environment,
            config,
        });
        let default_voice = shared.voice(&shared.config.default_voice)?;

        let (queue, jobs) = std::sync::mpsc::sync_channel::<Job>(shared.config.queue_depth);
        let jobs = Arc::new(Mutex::new(jobs));
        let mut workers = Vec::with_capacity(shared.config.workers);
        let mut ready = Vec::with_capacity(shared.config.workers);
        for n in 0..shared.config.workers.max(1) {
            let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
            let shared = shared.clone();
            let jobs = jobs.clone();
            let default_voice = default_voice.clone();
            let handle = std::thread::Builder::new()
                .name(format!("tts-{n}"))
                .spawn(move || {
                    let mut worker = Worker { shared, sessions: HashMap::new(), espeaks: HashMap::new() };
                    let loaded = worker.load(&default_voice);
                    let ok = loaded.is_ok();
                    let _ = ready_tx.send(loaded);
                    if ok {
                        worker.run(&jobs);
                    }
                })
                .map_err(|e| SpeechError::Onnx(format!("starting a TTS worker thread: {e}")))?;
            workers.push(handle);
            ready.push(ready_rx);
        }
        let pool = TtsPool { shared, queue: Some(queue), workers };
        for rx in ready {
            // On error, dropping `pool` closes the queue and joins the workers.
            rx.recv().unwrap_or(Err(SpeechError::PoolClosed(POOL)))?;
        }
        Ok(pool)
    }

    pub fn config(&self) -> &TtsConfig {
        &self.shared.config
    }

    pub fn cache(&self) -> &AudioCache {
        &self.shared.cache
    }

    /// The voices directory.
    pub fn voices_dir(&self) -> &Path {
        &self.shared.voices_dir
    }

    /// Names of the voices present in the voices directory (both files there).
    pub fn voices(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.shared.voices_dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".onnx")).map(str::to_owned))
            .filter(|name| voice_files(&self.shared.voices_dir, name).1.is_file())
            .collect();
        names.sort();
        names
    }

    /// A voice's config (read on first use); `None` names the default voice.
    pub fn voice(&self, name: Option<&str>) -> Result<Arc<VoiceConfig>, SpeechError> {
        self.shared.voice(name.unwrap_or(&self.shared.config.default_voice))
    }

    /// Starts synthesizing `text` with `voice` (default if `None`); the stream yields each
    /// sentence's audio as soon as it is ready. Errors at once for empty or oversized text,
    /// an unknown voice, or a full queue.
    pub fn synthesize_stream(&self, voice: Option<&str>, text: &str) -> Result<TtsStream, SpeechError> {
        let (voice, sentences) = self.prepare(voice, text)?;
        let (tx, rx) = mpsc::channel(sentences.len().max(1));
        let cancel = Arc::new(AtomicBool::new(false));
        let stream = TtsStream {
            rx,
            sample_rate: self.shared.output_rate(&voice),
            sentences: sentences.len(),
            cancel: cancel.clone(),
        };
        self.submit(voice, sentences, Sink::Async(tx), cancel)?;
        Ok(stream)
    }

    /// The whole reply's audio.
    pub async fn synthesize(&self, voice: Option<&str>, text: &str) -> Result<Synthesis, SpeechError> {
        self.synthesize_stream(voice, text)?.collect().await
    }

    /// `synthesize_stream` for threads outside an async runtime.
    pub fn synthesize_iter(&self, voice: Option<&str>, text: &str) -> Result<TtsBlockingStream, SpeechError> {
        let (voice, sentences) = self.prepare(voice, text)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(sentences.len().max(1));
        let cancel = Arc::new(AtomicBool::new(false));
        let stream = TtsBlockingStream {
            rx,
            sample_rate: self.shared.output_rate(&voice),
            sentences: sentences.len(),
            cancel: cancel.clone(),
            failed: false,
        };
        self.submit(voice, sentences, Sink::Blocking(tx), cancel)?;
        Ok(stream)
    }

    /// The whole reply's samples and sample rate, blocking (for `callcenter say`); safe to
    /// call from any thread, including inside `spawn_blocking`.
    pub fn synthesize_blocking(&self, voice: Option<&str>, text: &str) -> Result<Synthesis, SpeechError> {
        let stream = self.synthesize_iter(voice, text)?;
        let sample_rate = stream.sample_rate();
        Synthesis::collect(stream, sample_rate)
    }

    /// Synthesizes `texts` into the cache ahead of need (a template's fixed lines, the likely
    /// next reply). Sentences already cached are skipped; if all are, nothing is queued.
    pub fn prewarm(&self, voice: Option<&str>, texts: &[&str]) -> Result<Prewarm, SpeechError> {
        let voice = self.voice(voice)?;
        let mut sentences: Vec<(usize, Sentence)> = Vec::new();
        for text in texts {
            self.check_length(text)?;
            for sentence in text::sentences(text) {
                let fresh = sentences.iter().all(|(_, s)| s.text != sentence.text);
                if fresh && !self.shared.cache.contains(&voice.name, &sentence.text) {
                    sentences.push((sentences.len(), sentence));
                }
            }
        }
        let (done, rx) = oneshot::channel();
        if sentences.is_empty() {
            let _ = done.send(Ok(0));
            return Ok(Prewarm { rx });
        }
        let job = Job {
            voice,
            sentences,
            sink: Sink::Prewarm { done: Some(done), synthesized: 0 },
            cancel: Arc::new(AtomicBool::new(false)),
            admitted: Instant::now(),
            first_missed: false,
        };
        self.enqueue(job)?;
        Ok(Prewarm { rx })
    }

    fn check_length(&self, text: &str) -> Result<(), SpeechError> {
        let max = self.shared.config.max_text_chars;
        if text.chars().count() > max {
            return Err(SpeechError::InvalidInput(format!("text is longer than {max} characters")));
        }
        Ok(())
    }

    fn prepare(&self, voice: Option<&str>, text: &str) -> Result<(Arc<VoiceConfig>, Vec<Sentence>), SpeechError> {
        self.check_length(text)?;
        let voice = self.voice(voice)?;
        let sentences = text::sentences(text);
        if sentences.is_empty() {
            return Err(SpeechError::InvalidInput("the text has nothing to say".into()));
        }
        Ok((voice, sentences))
    }

    /// Sends the leading cached sentences straight to the sink, queues the rest.
    fn submit(
        &self,
        voice: Arc<VoiceConfig>,
        sentences: Vec<Sentence>,
        mut sink: Sink,
        cancel: Arc<AtomicBool>,
    ) -> Result<(), SpeechError> {
        let admitted = Instant::now();
        let mut rest = sentences.into_iter().enumerate().peekable();
        let mut first_missed = false;
        while let Some((index, sentence)) = rest.peek() {
            let Some(hit) = self.shared.cache.get(&voice.name, &sentence.text) else {
                first_missed = true;
                break;
            };
            let chunk = AudioChunk {
                samples: hit.samples,
                sample_rate: hit.sample_rate,
                index: *index,
                text: sentence.text.as_str().into(),
                cached: true,
            };
            sink.send(Ok(chunk));
            rest.next();
        }
        let sentences: Vec<(usize, Sentence)> = rest.collect();
        if sentences.is_empty() {
            return Ok(());
        }
        self.enqueue(Job { voice, sentences, sink, cancel, admitted, first_missed })
    }

    fn enqueue(&self, job: Job) -> Result<(), SpeechError> {
        let queue = self.queue.as_ref().ok_or(SpeechError::PoolClosed(POOL))?;
        match queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                metrics::counter!("tts_rejected_total").increment(1);
                Err(SpeechError::Overloaded(POOL))
            }
            Err(TrySendError::Disconnected(_)) => Err(SpeechError::PoolClosed(POOL)),
        }
    }
}

impl Drop for TtsPool {
    fn drop(&mut self) {
        // Closing the queue ends each worker's loop once its current reply is done.
        self.queue = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// One worker thread's state: its sessions (per voice) and espeak-ng processes (per espeak
/// voice).
struct Worker {
    shared: Arc<Shared>,
    sessions: HashMap<String, VoiceSession>,
    espeaks: HashMap<String, Espeak>,
}

impl Worker {
    fn run(&mut self, jobs: &Mutex<Receiver<Job>>) {
        loop {
            // The lock is held only while waiting; the next worker waits for the lock.
            let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                Ok(job) => job,
                Err(_) => return,
            };
            self.process(job);
        }
    }

    /// Loads what synthesis with `voice` needs (session and espeak-ng), if not yet loaded.
    fn load(&mut self, voice: &Arc<VoiceConfig>) -> Result<(), SpeechError> {
        let config = &self.shared.config;
        if !self.sessions.contains_key(&voice.name) {
            let (model, _) = voice_files(&self.shared.voices_dir, &voice.name);
            let options = SessionOptions { threads: config.threads_per_worker, spinning: config.spinning };
            let session = VoiceSession::load(self.shared.environment, &model, voice.clone(), options)?;
            self.sessions.insert(voice.name.clone(), session);
        }
        if voice.phoneme_type == PhonemeType::Espeak && !self.espeaks.contains_key(&voice.espeak_voice) {
            let espeak =
                Espeak::new(&config.espeak_program, &voice.espeak_voice, config.espeak_mode, config.espeak_timeout)?;
            self.espeaks.insert(voice.espeak_voice.clone(), espeak);
        }
        Ok(())
    }

    fn process(&mut self, job: Job) {
        let Job { voice, sentences, mut sink, cancel, admitted, first_missed } = job;
        let mut first = true;
        for (n, (index, sentence)) in sentences.into_iter().enumerate() {
            if cancel.load(Ordering::Relaxed) {
                break;
            }
            let skip_lookup = n == 0 && first_missed;
            let cached = if skip_lookup { None } else { self.shared.cache.get(&voice.name, &sentence.text) };
            let result = match cached {
                Some(hit) => Ok((hit.samples, true)),
                None => self.synthesize(&voice, &sentence).map(|samples| {
                    let samples: Arc<[i16]> = samples.into();
                    let entry = CachedAudio { samples: samples.clone(), sample_rate: self.shared.output_rate(&voice) };
                    self.shared.cache.insert(&voice.name, &sentence.text, entry);
                    (samples, false)
                }),
            };
            match result {
                Ok((samples, cached)) => {
                    let chunk = AudioChunk {
                        samples,
                        sample_rate: self.shared.output_rate(&voice),
                        index,
                        text: sentence.text.into(),
                        cached,
                    };
                    if first {
                        metrics::histogram!("tts_first_chunk_seconds").record(admitted.elapsed().as_secs_f64());
                        first = false;
                    }
                    if !sink.send(Ok(chunk)) {
                        break;
                    }
                }
                Err(e) => {
                    sink.send(Err(e));
                    return;
                }
            }
        }
        sink.finish();
    }

    /// One sentence: phonemes, ids, model, PCM16.
    fn synthesize(&mut self, voice: &Arc<VoiceConfig>, sentence: &Sentence) -> Result<Vec<i16>, SpeechError> {
        let started = Instant::now();
        self.load(voice)?;
        let phonemes = match voice.phoneme_type {
            PhonemeType::Espeak => {
                let espeak = self
                    .espeaks
                    .get_mut(&voice.espeak_voice)
                    .ok_or_else(|| SpeechError::Phonemizer("espeak-ng is not running".into()))?;
                let texts: Vec<&str> = sentence.clauses.iter().map(|c| c.text.as_str()).collect();
                let ipa = espeak.phonemize(&texts)?;
                let clauses: Vec<(String, Option<char>)> =
                    ipa.into_iter().zip(sentence.clauses.iter().map(|c| c.terminator)).collect();
                phonemize::assemble(&clauses)
            }
            PhonemeType::Text => VoiceConfig::text_phonemes(&sentence.text),
        };
        let ids = voice.phoneme_ids(&phonemes);
        if !ids.missing.is_empty() {
            tracing::debug!(voice = %voice.name, missing = ?ids.missing, "phonemes not in the voice's map were dropped");
        }
        let session = self
            .sessions
            .get_mut(&voice.name)
            .ok_or_else(|| SpeechError::Onnx(format!("voice {} is not loaded", voice.name)))?;
        let raw = session.infer(&ids.ids, 0)?;
        let mut pcm = voice::to_pcm16(&raw, self.shared.config.peak);
        let rate = self.shared.output_rate(voice);
        if rate != voice.sample_rate {
            // Once per synthesized sentence, in the worker; cached at this rate.
            pcm = crate::media::decode::resample_i16(&pcm, voice.sample_rate, rate)
                .map_err(|e| SpeechError::InvalidInput(e.to_string()))?;
        }
        metrics::histogram!("tts_sentence_seconds").record(started.elapsed().as_secs_f64());
        Ok(pcm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizing_follows_cores() {
        let one = TtsConfig::for_cores(1);
        assert_eq!((one.workers, one.threads_per_worker), (1, 1));
        let two = TtsConfig::for_cores(2);
        assert_eq!((two.workers, two.threads_per_worker, two.queue_depth), (1, 2, 2));
        let eight = TtsConfig::for_cores(8);
        assert_eq!((eight.workers, eight.threads_per_worker), (4, 2));
    }

    #[test]
    fn voice_names_cannot_leave_the_voices_dir() {
        for bad in ["", "../etc/passwd", "a/b", ".hidden", "a\\b", "x y", "nul\0"] {
            assert!(matches!(check_voice_name(bad), Err(SpeechError::InvalidInput(_))), "{bad:?}");
        }
        for good in ["en_US-joe-medium", "de_DE-thorsten-low", "v1.2"] {
            assert!(check_voice_name(good).is_ok(), "{good:?}");
        }
    }
}
