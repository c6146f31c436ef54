//! End of turn: Smart Turn v3.2 (`smart-turn-v3.2-cpu.onnx`, through `ort`) says whether the
//! caller has finished a sentence, from how its last seconds sound, when the VAD hears a pause.
//!
//! The model is an int8 Whisper-tiny-sized encoder with a classifier. Its input `input_features`
//! `[1, 80, 800]` is a Whisper log-mel spectrogram of the turn's last 8 s at 16 kHz, its output
//! `logits` `[1, 1]` is the probability that the turn is complete (despite the name: the graph
//! ends in a `Sigmoid`, and the reference code uses the value as a probability as is).
//!
//! **Features** ([`LogMel`]) are computed exactly as the reference inference code does: the
//! pipecat-ai 1.14.0 wheel, `pipecat/audio/turn/smart_turn/local_smart_turn_v3.py`
//! (`_predict_endpoint`) and the feature extractor it vendors from Hugging Face's
//! `WhisperFeatureExtractor`, `_whisper_features.py` (`compute_whisper_log_mel_features`):
//! 1. keep the last 8 s (128 000 samples); a shorter turn is padded with zeros *in front*;
//! 2. zero-mean unit-variance normalisation of those 8 s, padding included, in f32:
//!    `(x - mean) / sqrt(var + 1e-7)` (`do_normalize=True`);
//! 3. centred STFT in f64: reflect-padded by 200 samples on each side, periodic Hann window of
//!    400, hop 160, power spectrum |X|²;
//! 4. 80 Slaney-scale, Slaney-normalised triangular mel filters over 0-8 kHz, floor 1e-10,
//!    log10;
//! 5. the last of the 801 frames dropped (800 left), everything below (max - 8) raised to it,
//!    then `(x + 4) / 4`, cast to f32.
//!
//! Checked against that Python code (numpy 2.4) on synthetic signals (the fixture in this
//! module's tests: both the front-padding and the truncation path) and on jfk.wav; the largest
//! difference over all 64 000 values is given in docs/BENCHMARKS.md ("Smart Turn v3.2").
//!
//! **How far to trust it**: on clear complete and incomplete sentences in espeak-ng and flite
//! voices through G.711 it was right on 78 of 112, and called 23 of 56 incomplete ones complete
//! (docs/BENCHMARKS.md, `tests/speech_turn.rs`): a "complete" needs another check (the
//! transcript, the silence ceiling) before the bot speaks over a caller.
//!
//! **What audio to give it**: the reference (pipecat's `BaseSmartTurn`) passes the turn from
//! 0.5 s before the VAD first heard speech up to the moment it asks, so the short pause that
//! triggered the question (about 200 ms) is included. Audio older than 8 s is ignored.
//!
//! **The pool** ([`TurnPool`]) works like the STT pool: dedicated worker threads (never tokio
//! workers), each with its own ONNX session, feature buffers and FFT plan built once; a bounded
//! queue; a clip that finds the pool full is refused at once with
//! `SpeechError::Overloaded("turn")` (`turn_rejected_total`), since a late answer to "is the
//! turn over?" is worth no more than the silence ceiling the caller falls back to.
//!
//! Metrics: `turn_rejected_total` (counter), `turn_latency_seconds` (histogram, from admission
//! to result: queue wait, features and inference).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{Tensor, TensorElementType, ValueType};
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use tokio::sync::oneshot;

use super::models::require;
use super::{ModelPaths, SpeechError, onnx};

/// The rate the model and its features are defined at.
pub const SAMPLE_RATE: u32 = 16_000;
/// The model hears the last 8 s of a turn.
pub const WINDOW_SAMPLES: usize = 8 * SAMPLE_RATE as usize;
/// Mel bands: rows of `input_features`.
pub const N_MELS: usize = 80;
/// 10 ms frames: columns of `input_features`.
pub const N_FRAMES: usize = 800;
/// Values in one `input_features` tensor, mel-major (`[m * N_FRAMES + t]`).
pub const FEATURES_LEN: usize = N_MELS * N_FRAMES;

const N_FFT: usize = 400;
const HOP: usize = 160;
const N_BINS: usize = N_FFT / 2 + 1;
const MEL_FLOOR: f64 = 1e-10;
const NORM_EPS: f32 = 1e-7;
/// log10 units kept below the loudest value (80 dB).
const DYNAMIC_RANGE: f64 = 8.0;

const INPUT: &str = "input_features";
const OUTPUT: &str = "logits";
/// The name in `SpeechError::Overloaded` / `PoolClosed`.
const POOL: &str = "turn";

/// Whisper log-mel features as Smart Turn v3 takes them (see the module documentation), with
/// every buffer, the FFT plan and the mel filterbank made once: computing allocates nothing.
pub struct LogMel {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    filters: Vec<MelFilter>,
    /// The normalised 8 s, reflect-padded by `N_FFT / 2` on each side.
    signal: Vec<f64>,
    frame: Vec<f64>,
    spectrum: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    power: Vec<f64>,
    /// log10 mel energies before the dynamic-range clamp, mel-major.
    log_mel: Vec<f64>,
}

impl std::fmt::Debug for LogMel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMel").finish_non_exhaustive()
    }
}

/// One triangular filter: its non-zero weights from `first_bin` on (skipping the zeros changes
/// no sum: they are exact zeros in the reference's dense matrix too).
struct MelFilter {
    first_bin: usize,
    weights: Vec<f64>,
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

impl LogMel {
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
        let spectrum = fft.make_output_vec();
        let scratch = fft.make_scratch_vec();
        LogMel {
            fft,
            window: periodic_hann(N_FFT),
            filters: mel_filters(),
            signal: vec![0.0; WINDOW_SAMPLES + N_FFT],
            frame: vec![0.0; N_FFT],
            spectrum,
            scratch,
            power: vec![0.0; N_BINS],
            log_mel: vec![0.0; FEATURES_LEN],
        }
    }

    /// Writes the features of the last 8 s of `audio` (16 kHz, full scale ±1) into `out`
    /// (`FEATURES_LEN` values, mel-major, as `input_features` lays them out).
    pub fn compute(&mut self, audio: &[f32], out: &mut [f32]) -> Result<(), SpeechError> {
        if out.len() != FEATURES_LEN {
            return Err(SpeechError::InvalidInput(format!(
                "features buffer holds {} values, expected {FEATURES_LEN}",
                out.len()
            )));
        }
        self.fill_signal(audio);
        let mut max = f64::NEG_INFINITY;
        for t in 0..N_FRAMES {
            max = max.max(self.frame_log_mel(t)?);
        }
        let floor = max - DYNAMIC_RANGE;
        for (dst, &value) in out.iter_mut().zip(&self.log_mel) {
            *dst = ((value.max(floor) + 4.0) / 4.0) as f32;
        }
        Ok(())
    }

    /// Steps 1-2 and the reflect padding of step 3: the window the frames are cut from.
    fn fill_signal(&mut self, audio: &[f32]) {
        let tail = &audio[audio.len().saturating_sub(WINDOW_SAMPLES)..];
        let pad = WINDOW_SAMPLES - tail.len();
        let (mean, std) = mean_and_std(tail, WINDOW_SAMPLES);
        // The reference normalises in f32 and promotes to f64 for the spectrogram.
        let normalise = |x: f32| f64::from((x - mean) / std);
        let edge = N_FFT / 2;
        let body = &mut self.signal[edge..edge + WINDOW_SAMPLES];
        body[..pad].fill(normalise(0.0));
        for (dst, &x) in body[pad..].iter_mut().zip(tail) {
            *dst = normalise(x);
        }
        // numpy's "reflect": mirrored around the edge sample, which is not repeated.
        let last = edge + WINDOW_SAMPLES - 1;
        for k in 1..=edge {
            self.signal[edge - k] = self.signal[edge + k];
            self.signal[last + k] = self.signal[last - k];
        }
    }

    /// Steps 3-4 for frame `t`: its 80 log10 mel energies into `log_mel`; returns their maximum.
    fn frame_log_mel(&mut self, t: usize) -> Result<f64, SpeechError> {
        let start = t * HOP;
        for ((dst, &x), &w) in self.frame.iter_mut().zip(&self.signal[start..start + N_FFT]).zip(&self.window) {
            *dst = x * w;
        }
        self.fft
            .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch)
            .map_err(|e| SpeechError::InvalidInput(format!("feature FFT: {e}")))?;
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.norm_sqr();
        }
        let mut max = f64::NEG_INFINITY;
        for (m, filter) in self.filters.iter().enumerate() {
            let bins = &self.power[filter.first_bin..filter.first_bin + filter.weights.len()];
            let energy: f64 = bins.iter().zip(&filter.weights).map(|(p, w)| p * w).sum();
            let value = energy.max(MEL_FLOOR).log10();
            self.log_mel[m * N_FRAMES + t] = value;
            max = max.max(value);
        }
        Ok(max)
    }
}

/// Mean and `sqrt(var + 1e-7)` of `tail` preceded by zeros up to `len` samples, as f32 (what
/// numpy gives for an f32 array; the sums are taken in f64, closer to exact than numpy's
/// pairwise f32 sums, which differ from them by rounding only).
fn mean_and_std(tail: &[f32], len: usize) -> (f32, f32) {
    let n = len as f64;
    let mean = tail.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let zeros = (len - tail.len()) as f64;
    let squares: f64 = tail.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() + zeros * mean * mean;
    let var = (squares / n) as f32;
    (mean as f32, (var + NORM_EPS).sqrt())
}

/// `np.hanning(n + 1)[:-1]`, which is `torch.hann_window(n)`.
fn periodic_hann(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()).collect()
}

fn hertz_to_mel(hz: f64) -> f64 {
    if hz >= 1000.0 { 15.0 + (hz / 1000.0).ln() * (27.0 / 6.4f64.ln()) } else { 3.0 * hz / 200.0 }
}

fn mel_to_hertz(mel: f64) -> f64 {
    if mel >= 15.0 { 1000.0 * ((6.4f64.ln() / 27.0) * (mel - 15.0)).exp() } else { 200.0 * mel / 3.0 }
}

/// `np.linspace(start, stop, n)`: `start + i * step`, the last point exactly `stop`.
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    let step = (stop - start) / (n - 1) as f64;
    let mut points: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
    points[n - 1] = stop;
    points
}

/// The reference's `_build_mel_filterbank(201, 80, 0, 8000, 16000)`: triangles between
/// neighbouring Slaney-mel centres, each scaled by 2 / its width in Hz.
fn mel_filters() -> Vec<MelFilter> {
    let centres: Vec<f64> = linspace(hertz_to_mel(0.0), hertz_to_mel(f64::from(SAMPLE_RATE) / 2.0), N_MELS + 2)
        .into_iter()
        .map(mel_to_hertz)
        .collect();
    let bin_hz = linspace(0.0, f64::from(SAMPLE_RATE / 2), N_BINS);
    (0..N_MELS)
        .map(|m| {
            let (low, centre, high) = (centres[m], centres[m + 1], centres[m + 2]);
            let scale = 2.0 / (high - low);
            let dense: Vec<f64> = bin_hz
                .iter()
                .map(|&f| {
                    let down = -(low - f) / (centre - low);
                    let up = (high - f) / (high - centre);
                    down.min(up).max(0.0) * scale
                })
                .collect();
            let first_bin = dense.iter().position(|&w| w != 0.0).unwrap_or(0);
            let end = dense.iter().rposition(|&w| w != 0.0).map_or(first_bin, |i| i + 1);
            MelFilter { first_bin, weights: dense[first_bin..end].to_vec() }
        })
        .collect()
}

/// How the pool is sized and where it draws the line.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// Worker threads, each with its own ONNX session: predictions computed at the same time.
    pub workers: usize,
    /// ONNX Runtime intra-op threads each worker runs the model on.
    pub threads_per_worker: usize,
    /// Clips that may wait for a free worker; one more is refused with `Overloaded`.
    pub queue_depth: usize,
    /// A turn is complete when the probability is above this (the reference uses 0.5).
    pub threshold: f32,
}

impl TurnConfig {
    /// One single-threaded worker per core and a queue of two clips per worker, as the STT pool:
    /// a prediction is ~100 ms of one core, too short to gain from splitting across threads
    /// that would then wait for each other while other pools want the same cores, and a queued
    /// clip then waits at most a few hundred ms before the pool refuses more.
    pub fn for_cores(cores: usize) -> Self {
        let workers = cores.max(1);
        TurnConfig { workers, threads_per_worker: 1, queue_depth: 2 * workers, threshold: 0.5 }
    }
}

impl Default for TurnConfig {
    /// `for_cores` with this machine's available parallelism.
    fn default() -> Self {
        TurnConfig::for_cores(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// The model's answer for one turn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnPrediction {
    /// Probability that the turn is complete, 0..=1.
    pub probability: f32,
    /// `probability > threshold`.
    pub complete: bool,
    /// Time spent computing the features.
    pub features: Duration,
    /// Time spent in the model.
    pub inference: Duration,
}

/// A clip waiting for a worker.
struct Job {
    audio: Vec<f32>,
    reply: oneshot::Sender<Result<TurnPrediction, SpeechError>>,
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

/// The Smart Turn pool. Dropping it lets the workers finish the queued clips and exit.
pub struct TurnPool {
    jobs: SyncSender<Job>,
    in_pool: Arc<AtomicUsize>,
    capacity: usize,
    config: TurnConfig,
}

impl std::fmt::Debug for TurnPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnPool").field("config", &self.config).field("in_pool", &self.in_pool()).finish()
    }
}

impl TurnPool {
    /// Loads ONNX Runtime (once per process) and `smart-turn-v3.2-cpu.onnx`, one session per
    /// worker, and starts the workers.
    pub fn new(paths: &ModelPaths, config: TurnConfig) -> Result<Self, SpeechError> {
        if config.workers == 0 || config.threads_per_worker == 0 {
            return Err(SpeechError::InvalidInput("turn pool needs at least one worker and one thread".into()));
        }
        if !(0.0..=1.0).contains(&config.threshold) {
            return Err(SpeechError::InvalidInput(format!("turn threshold {} is not in 0..=1", config.threshold)));
        }
        let environment = onnx::ensure_loaded(&paths.onnxruntime())?;
        let path = require("Smart Turn model", &paths.smart_turn())?;
        let model = std::fs::read(&path).map_err(|e| SpeechError::Onnx(format!("reading {}: {e}", path.display())))?;
        let capacity = config.workers + config.queue_depth;
        // Admission (`in_pool`) keeps at most `capacity` jobs in flight, so the channel never
        // fills and `try_send` fails only when the workers are gone.
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(capacity);
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..config.workers {
            let session = build_session(environment, &model, config.threads_per_worker)
                .map_err(|e| SpeechError::Onnx(format!("loading {}: {e}", path.display())))?;
            check_signature(&session).map_err(|reason| {
                SpeechError::Onnx(format!("{}: not a Smart Turn v3 model: {reason}", path.display()))
            })?;
            let mut worker = Worker::new(session, config.threshold)?;
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("turn-{index}"))
                .spawn(move || worker.run(&queue))
                .map_err(|e| SpeechError::Onnx(format!("starting a turn worker: {e}")))?;
        }
        tracing::info!(
            model = %path.display(),
            workers = config.workers,
            threads_per_worker = config.threads_per_worker,
            queue_depth = config.queue_depth,
            "smart turn pool ready"
        );
        Ok(TurnPool { jobs, in_pool: Arc::new(AtomicUsize::new(0)), capacity, config })
    }

    pub fn config(&self) -> &TurnConfig {
        &self.config
    }

    /// Clips admitted and not yet answered (running or queued).
    pub fn in_pool(&self) -> usize {
        self.in_pool.load(Ordering::Acquire)
    }

    /// Whether the turn in `audio_16k` (16 kHz mono, -1..1; only its last 8 s are used) is
    /// complete. Refused at once (`Overloaded`) when the pool is full. If the returned future
    /// is dropped before a worker takes the clip, the clip is skipped (the caller spoke again).
    pub async fn predict(&self, audio_16k: Vec<f32>) -> Result<TurnPrediction, SpeechError> {
        let reply = self.submit(audio_16k)?;
        reply.await.map_err(|_| SpeechError::PoolClosed(POOL))?
    }

    /// `predict` for threads outside an async runtime (tests, benches, the CLI); blocks until
    /// the prediction is ready. Inside a runtime, use `predict`.
    pub fn predict_blocking(&self, audio_16k: &[f32]) -> Result<TurnPrediction, SpeechError> {
        let tail = &audio_16k[audio_16k.len().saturating_sub(WINDOW_SAMPLES)..];
        let reply = self.submit(tail.to_vec())?;
        futures::executor::block_on(reply).map_err(|_| SpeechError::PoolClosed(POOL))?
    }

    /// Validates and admits a clip; the receiver gets its result.
    fn submit(
        &self,
        mut audio: Vec<f32>,
    ) -> Result<oneshot::Receiver<Result<TurnPrediction, SpeechError>>, SpeechError> {
        // Only the last 8 s matter; a queued clip holds no more than that.
        audio.drain(..audio.len().saturating_sub(WINDOW_SAMPLES));
        validate(&audio)?;
        let admitted = self
            .in_pool
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.capacity).then_some(n + 1))
            .is_ok();
        if !admitted {
            metrics::counter!("turn_rejected_total").increment(1);
            return Err(SpeechError::Overloaded(POOL));
        }
        let slot = Slot(Arc::clone(&self.in_pool));
        let (reply, result) = oneshot::channel();
        let job = Job { audio, reply, admitted: Instant::now(), _slot: slot };
        match self.jobs.try_send(job) {
            Ok(()) => Ok(result),
            // Unreachable while admission holds; shed the clip rather than block.
            Err(TrySendError::Full(_)) => {
                metrics::counter!("turn_rejected_total").increment(1);
                Err(SpeechError::Overloaded(POOL))
            }
            Err(TrySendError::Disconnected(_)) => Err(SpeechError::PoolClosed(POOL)),
        }
    }
}

/// Empty or non-finite audio is refused before it takes a place in the queue.
fn validate(audio: &[f32]) -> Result<(), SpeechError> {
    if audio.is_empty() {
        return Err(SpeechError::InvalidInput("empty audio".into()));
    }
    if let Some(index) = audio.iter().position(|s| !s.is_finite()) {
        return Err(SpeechError::InvalidInput(format!("audio sample {index} of the last 8 s is not a finite number")));
    }
    Ok(())
}

fn build_session(
    environment: &ort::environment::Environment,
    model: &[u8],
    threads: usize,
) -> Result<Session, ort::Error> {
    // As the reference: sequential, one inter-op thread, all graph optimisations. No spinning:
    // idle intra-op threads would burn the cores STT and TTS need.
    Session::builder(environment)?
        .with_optimization_level(GraphOptimizationLevel::All)?
        .with_parallel_execution(false)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        .with_intra_op_spinning(false)?
        .commit_from_memory(model)
}

/// One f32 input `input_features` `[batch, 80, 800]` and an f32 output `logits`.
fn check_signature(session: &Session) -> Result<(), String> {
    let [input] = session.inputs() else {
        return Err(format!("{} inputs, expected 1", session.inputs().len()));
    };
    match input.dtype() {
        ValueType::Tensor { ty: TensorElementType::Float32, shape, .. }
            if input.name() == INPUT
                && shape.len() == 3
                && shape[1] == N_MELS as i64
                && shape[2] == N_FRAMES as i64 => {}
        other => return Err(format!("input `{}` is {other:?}, expected `{INPUT}` f32 [batch, 80, 800]", input.name())),
    }
    let output =
        session.outputs().iter().find(|o| o.name() == OUTPUT).ok_or_else(|| format!("no `{OUTPUT}` output"))?;
    match output.dtype() {
        ValueType::Tensor { ty: TensorElementType::Float32, .. } => Ok(()),
        other => Err(format!("`{OUTPUT}` is {other:?}, expected an f32 tensor")),
    }
}

/// A worker thread's model, features and input tensor.
struct Worker {
    session: Session,
    features: LogMel,
    input: Tensor<f32>,
    threshold: f32,
}

impl Worker {
    fn new(session: Session, threshold: f32) -> Result<Self, SpeechError> {
        let input = Tensor::from_array(([1usize, N_MELS, N_FRAMES], vec![0.0f32; FEATURES_LEN]))?;
        Ok(Worker { session, features: LogMel::new(), input, threshold })
    }

    /// Serves jobs until the pool is dropped.
    fn run(&mut self, queue: &Mutex<Receiver<Job>>) {
        loop {
            // The lock is held only while waiting for the next job, so idle workers take turns.
            let next = queue.lock().map(|rx| rx.recv());
            let Ok(Ok(job)) = next else { return };
            let Job { audio, reply, admitted, _slot } = job;
            if reply.is_closed() {
                continue; // nobody waits for this answer any more
            }
            let result = self.predict(&audio);
            // The slot is given back before replying, so a caller that asks again at once fits.
            drop(_slot);
            metrics::histogram!("turn_latency_seconds").record(admitted.elapsed().as_secs_f64());
            let _ = reply.send(result);
        }
    }

    fn predict(&mut self, audio: &[f32]) -> Result<TurnPrediction, SpeechError> {
        let start = Instant::now();
        self.features.compute(audio, self.input.extract_tensor_mut().1)?;
        let features = start.elapsed();
        let probability = self.infer()?;
        let inference = start.elapsed().saturating_sub(features);
        Ok(TurnPrediction { probability, complete: probability > self.threshold, features, inference })
    }

    fn infer(&mut self) -> Result<f32, SpeechError> {
        let outputs = self.session.run(ort::inputs![&self.input])?;
        let value = outputs
            .get(OUTPUT)
            .ok_or_else(|| SpeechError::Onnx(format!("no `{OUTPUT}` output")))?
            .try_extract_tensor::<f32>()?
            .1
            .first()
            .copied()
            .ok_or_else(|| SpeechError::Onnx(format!("empty `{OUTPUT}`")))?;
        if !(0.0..=1.0).contains(&value) {
            return Err(SpeechError::Onnx(format!("`{OUTPUT}` is {value}, not a probability")));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeded noise plus a 250 Hz sawtooth switched on and off every 0.5 s, in PCM16 steps, so
    /// the Python reference computes on bit-identical samples.
    fn probe(len: usize) -> Vec<f32> {
        let mut state: u32 = 12345;
        (0..len)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = ((state >> 16) & 0x3ff) as i32 - 512;
                let saw = ((i % 64) as i32 - 32) * 200;
                let on = (i / 8000) % 2 == 0;
                (noise + if on { saw } else { 0 }) as f32 / 32768.0
            })
            .collect()
    }

    const MELS: [usize; 6] = [0, 7, 23, 41, 62, 79];
    const FRAMES: [usize; 8] = [0, 1, 150, 499, 500, 650, 700, 799];

    /// `compute_whisper_log_mel_features(truncate_audio_to_last_n_seconds(probe(n)),
    /// do_normalize=True)` from the pipecat-ai 1.14.0 wheel under numpy 2.4.6, at
    /// (MELS x FRAMES), and the mean of all 64 000 values.
    #[rustfmt::skip]
    const REFERENCE_3S: [f32; 48] = [
        0.6220149, 0.6220149, 0.6220149, 0.93616337, 1.4249809, 1.4073908, 1.4223974, 0.53518254,
        -0.23607661, -0.23607661, -0.23607661, 0.8356725, 1.5421846, 1.5370326, 1.5444969, 0.8609547,
        -0.23607661, -0.23607661, -0.23607661, 0.63258195, 0.9625076, 1.0246254, 0.95487916, 0.70651805,
        -0.23607661, -0.23607661, -0.23607661, 0.46827334, 1.1565611, 1.1729175, 1.1637347, 0.8015548,
        -0.23607661, -0.23607661, -0.23607661, 0.38182858, 1.0133728, 1.0306926, 1.0361772, 0.745357,
        -0.23607661, -0.23607661, -0.23607661, 0.20265394, 0.88812613, 0.9021593, 0.91622525, 0.7655535,
    ];
    const REFERENCE_3S_MEAN: f64 = 0.2185583398649469;
    #[rustfmt::skip]
    const REFERENCE_10S: [f32; 48] = [
        1.455911, 0.87172663, 1.319819, 0.94525117, 1.3219129, 1.3087487, 1.3187804, 0.8572817,
        1.4481761, 1.5474694, 1.4326161, 0.83965486, 1.4438528, 1.4362621, 1.4337732, 0.5263994,
        0.95246655, 0.661341, 0.86499625, 0.7100037, 0.8769219, 0.91970485, 0.8947996, 0.6768744,
        1.0922666, 1.1577092, 1.0487173, 0.68690526, 1.0686287, 1.0285057, 1.0814662, 0.7452953,
        0.97473365, 1.001589, 0.9010187, 0.71749544, 0.96670437, 0.9224935, 0.8919293, 0.5935397,
        0.8662161, 0.8933445, 0.81658745, 0.73974663, 0.834402, 0.80653906, 0.7847279, 0.6668916,
    ];
    const REFERENCE_10S_MEAN: f64 = 0.8370677003657474;

    fn features(audio: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; FEATURES_LEN];
        LogMel::new().compute(audio, &mut out).unwrap();
        out
    }

    fn assert_matches_reference(features: &[f32], reference: &[f32; 48], reference_mean: f64) {
        let mut worst = 0.0f32;
        for (i, (&m, &t)) in MELS.iter().flat_map(|m| FRAMES.iter().map(move |t| (m, t))).enumerate() {
            let diff = (features[m * N_FRAMES + t] - reference[i]).abs();
            worst = worst.max(diff);
            assert!(
                diff < 1e-5,
                "mel {m} frame {t}: {} against the reference's {}",
                features[m * N_FRAMES + t],
                reference[i]
            );
        }
        let mean = features.iter().map(|&v| f64::from(v)).sum::<f64>() / FEATURES_LEN as f64;
        assert!((mean - reference_mean).abs() < 1e-6, "mean {mean} against {reference_mean}");
        eprintln!(
            "largest difference at the probed points: {worst:e}; mean off by {:e}",
            (mean - reference_mean).abs()
        );
    }

    #[test]
    fn a_short_turn_is_padded_in_front_as_the_reference_does() {
        assert_matches_reference(&features(&probe(3 * 16_000)), &REFERENCE_3S, REFERENCE_3S_MEAN);
    }

    #[test]
    fn a_long_turn_keeps_its_last_8_s_as_the_reference_does() {
        let long = probe(10 * 16_000);
        let features = features(&long);
        assert_matches_reference(&features, &REFERENCE_10S, REFERENCE_10S_MEAN);
        assert_eq!(features, self::features(&long[2 * 16_000..]));
    }

    #[test]
    fn buffers_are_reused_without_leaking_one_turn_into_the_next() {
        let mut log_mel = LogMel::new();
        let mut first = vec![0.0; FEATURES_LEN];
        let mut again = vec![0.0; FEATURES_LEN];
        log_mel.compute(&probe(3 * 16_000), &mut first).unwrap();
        log_mel.compute(&probe(10 * 16_000), &mut again).unwrap();
        log_mel.compute(&probe(3 * 16_000), &mut again).unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn silence_is_the_floor_everywhere() {
        // Normalised silence is all zeros: every mel energy is the 1e-10 floor, log10 -10,
        // and (-10 + 4) / 4 = -1.5.
        assert!(features(&[0.0; 16_000]).iter().all(|&v| v == -1.5));
    }

    #[test]
    fn the_features_buffer_must_fit_the_model_input() {
        let mut short = vec![0.0; FEATURES_LEN - 1];
        assert!(matches!(LogMel::new().compute(&[0.1; 100], &mut short), Err(SpeechError::InvalidInput(_))));
    }

    #[test]
    fn filterbank_and_window_are_the_reference_ones() {
        let hann = periodic_hann(N_FFT);
        assert_eq!((hann[0], hann[N_FFT / 2]), (0.0, 1.0));
        assert!((hann[100] - 0.5).abs() < 1e-15 && (hann[1] - hann[N_FFT - 1]).abs() < 1e-15);
        let filters = mel_filters();
        assert_eq!(filters.len(), N_MELS);
        // Reference values (`_MEL_FILTERS` of the pipecat wheel): centres 37.2 Hz apart below
        // 1 kHz, so the first triangle covers only the 40 Hz bin; the last ends at bin 199.
        assert_eq!((filters[0].first_bin, filters[0].weights.len()), (1, 1));
        assert!((filters[0].weights[0] - 0.024_862_593_984_176_087).abs() < 1e-15);
        let last = &filters[N_MELS - 1];
        assert_eq!(last.first_bin + last.weights.len(), 200);
        assert!((last.weights[last.weights.len() - 1] - 0.000_448_759_027_589_055_84).abs() < 1e-15);
        let widths: Vec<usize> = filters.iter().step_by(10).map(|f| f.weights.len()).collect();
        assert_eq!(widths, [1, 2, 2, 2, 3, 5, 7, 10]);
        assert!(filters.iter().all(|f| f.first_bin + f.weights.len() <= N_BINS && !f.weights.is_empty()));
        assert_eq!(linspace(0.0, 8000.0, N_BINS)[1], 40.0);
    }

    #[test]
    fn default_sizing_is_a_single_threaded_worker_per_core() {
        let two = TurnConfig::for_cores(2);
        assert_eq!((two.workers, two.threads_per_worker, two.queue_depth, two.threshold), (2, 1, 4, 0.5));
        let none = TurnConfig::for_cores(0);
        assert_eq!((none.workers, none.threads_per_worker), (1, 1));
    }

    #[test]
    fn bad_audio_is_refused_before_queueing() {
        assert!(matches!(validate(&[]), Err(SpeechError::InvalidInput(_))));
        assert!(matches!(validate(&[0.0, f32::NAN]), Err(SpeechError::InvalidInput(_))));
        assert!(matches!(validate(&[f32::INFINITY]), Err(SpeechError::InvalidInput(_))));
        assert!(validate(&[0.0; 10]).is_ok());
    }
}
