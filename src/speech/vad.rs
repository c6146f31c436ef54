//! Voice activity detection with Silero VAD (ONNX, through `ort`), 8 kHz and 16 kHz.
//!
//! One [`VadModel`] per process holds the weights; each call owns a [`VadStream`] with what is
//! per call: the model's recurrent state (`[2, 1, 128]` f32), the last samples of the previous
//! chunk (Silero takes them as context), and the samples collected towards the next chunk.
//!
//! Silero scores 32 ms chunks (512 samples at 16 kHz, 256 at 8 kHz, each preceded by 64 or 32
//! context samples). Calls deliver 20 ms frames, so [`VadStream::push_i16`] / [`VadStream::push_f32`]
//! take a frame of any length, run the model on every chunk the frame completes, and return one
//! probability per frame: the newest chunk's score, held until the next chunk completes (the
//! highest one if a long frame completed several). Feed those straight to
//! [`crate::media::endpointer::Endpointer::push_frame`]; a frame's probability is at most one
//! chunk (32 ms) old.
//!
//! Sharing: `Session::run` takes `&mut self` (ONNX Runtime's `Run` is not thread safe in every
//! execution provider), so the model holds a small pool of sessions, one per core by default,
//! each behind a mutex. A chunk takes the first free session and blocks only when all are busy
//! (counted in [`VadModel::contended_runs`]). A run is 0.1-0.2 ms; measured on 2 cores with 2
//! worker threads, no chunk waited with 2 sessions and 3-4% did with one, at the same CPU cost
//! per frame. Each session costs about 17 MB of RSS (docs/BENCHMARKS.md), so on a small host
//! `VadConfig::sessions = Some(1)` is a fair trade.
//!
//! No batching yet: each chunk is one run. Scoring all calls' chunks of a tick in one run
//! (`input [B, 576]`, `state [2, B, 128]`) measured 2-2.5x cheaper per chunk, the next step if
//! the media path must carry 1 000 calls on 2 cores.
//!
//! Energy gate: a chunk whose RMS is below [`VadConfig::gate_rms`] (default 0.001, -60 dBFS,
//! about 33 in PCM16 units: far below jfk.wav's room tone at -40 dBFS, far above µ-law's idle
//! codes at ±8) is not given to the model and scores 0; so does any 20 ms frame below it, at once,
//! so the end of speech followed by digital silence is timed to the frame rather than to the
//! 32 ms chunk. The recurrent state is held through up to [`HOLD_GATED_CHUNKS`] gated chunks
//! (160 ms: a dropout inside speech changes nothing) and then reset to zeros, Silero's
//! start-of-stream state. Neither choice reproduces the ungated model, whose state drifts on
//! digital silence without settling; measured against it on jfk.wav split by digital silence
//! (`tests/speech_vad.rs`), holding is closer after 100 ms gaps and resetting after 1 s gaps,
//! and after 1 s gaps of digital silence at 8 kHz the ungated model missed two of the four
//! following utterances and found the other two 300-500 ms late, where the gated one found all
//! four on time.
//!
//! No allocation per frame: the input, state and sample-rate tensors and the preallocated
//! output tensors are created once per stream and reused; `ort` builds its argument lists on the
//! stack. ONNX Runtime's own C++ work inside `Run` is outside this module (see the benchmark).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ort::memory::Allocator;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session};
use ort::value::{Tensor, TensorElementType, ValueType};

use super::models::require;
use super::{ModelPaths, SpeechError, onnx};

/// Names of Silero VAD's inputs and outputs (v5/v6 ONNX export).
const INPUT: &str = "input";
const STATE: &str = "state";
const SAMPLE_RATE: &str = "sr";
const OUTPUT: &str = "output";
const STATE_OUT: &str = "stateN";
/// The recurrent state's shape.
const STATE_SHAPE: [usize; 3] = [2, 1, 128];
const STATE_LEN: usize = 2 * 128;

#[derive(Debug, thiserror::Error)]
pub enum VadError {
    /// The model or ONNX Runtime could not be loaded.
    #[error(transparent)]
    Load(#[from] SpeechError),
    /// The file loaded but does not look like Silero VAD (different inputs or outputs).
    #[error("{path}: not a Silero VAD model: {reason}")]
    UnexpectedModel { path: std::path::PathBuf, reason: String },
    #[error("unsupported VAD sample rate {0} Hz (Silero takes 8000 or 16000)")]
    UnsupportedRate(u32),
    /// ONNX Runtime failed to run a chunk; the stream's state is reset, so the next chunk starts
    /// afresh.
    #[error("VAD inference: {0}")]
    Inference(String),
}

impl From<ort::Error> for VadError {
    fn from(err: ort::Error) -> Self {
        VadError::Inference(err.to_string())
    }
}

/// The two rates Silero was trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadRate {
    Hz8000,
    Hz16000,
}

impl VadRate {
    pub fn from_hz(hz: u32) -> Result<Self, VadError> {
        match hz {
            8_000 => Ok(VadRate::Hz8000),
            16_000 => Ok(VadRate::Hz16000),
            other => Err(VadError::UnsupportedRate(other)),
        }
    }

    pub fn hz(self) -> u32 {
        match self {
            VadRate::Hz8000 => 8_000,
            VadRate::Hz16000 => 16_000,
        }
    }

    /// Samples the model scores at once (32 ms).
    pub fn chunk_len(self) -> usize {
        match self {
            VadRate::Hz8000 => 256,
            VadRate::Hz16000 => 512,
        }
    }

    /// Samples of the previous chunk prepended as context (4 ms).
    pub fn context_len(self) -> usize {
        self.chunk_len() / 8
    }

    /// Samples in one 20 ms frame.
    pub fn frame_len(self) -> usize {
        self.hz() as usize / 50
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VadConfig {
    /// Sessions in the pool; `None` sizes it to the cores.
    pub sessions: Option<usize>,
    /// Chunks whose RMS (full scale 1.0) is below this skip the model and score 0; 0 disables
    /// the gate.
    pub gate_rms: f32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self { sessions: None, gate_rms: DEFAULT_GATE_RMS }
    }
}

/// -60 dBFS: see the module documentation.
pub const DEFAULT_GATE_RMS: f32 = 0.001;

/// Gated chunks (160 ms) after which the recurrent state is reset rather than held.
pub const HOLD_GATED_CHUNKS: u32 = 5;

/// Silero VAD, loaded once and shared by every call's [`VadStream`].
pub struct VadModel {
    sessions: Box<[Mutex<Session>]>,
    /// Where the next chunk starts looking for a free session, so streams spread over the pool.
    next: AtomicUsize,
    contended: AtomicU64,
    gate_rms: f32,
}

impl std::fmt::Debug for VadModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VadModel")
            .field("sessions", &self.sessions.len())
            .field("contended_runs", &self.contended_runs())
            .field("gate_rms", &self.gate_rms)
            .finish()
    }
}

impl VadModel {
    /// Loads ONNX Runtime (once per process) and `silero_vad.onnx` from `paths`.
    pub fn load(paths: &ModelPaths, config: &VadConfig) -> Result<Arc<Self>, VadError> {
        let environment = onnx::ensure_loaded(&paths.onnxruntime())?;
        let path = require("Silero VAD model", &paths.silero_vad())?;
        let count =
            config.sessions.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
        let model_bytes =
            std::fs::read(&path).map_err(|e| SpeechError::Onnx(format!("reading {}: {e}", path.display())))?;
        let mut sessions = Vec::with_capacity(count);
        for _ in 0..count {
            let session = build_session(environment, &model_bytes)
                .map_err(|e| SpeechError::Onnx(format!("loading {}: {e}", path.display())))?;
            check_signature(&session).map_err(|reason| VadError::UnexpectedModel { path: path.clone(), reason })?;
            sessions.push(Mutex::new(session));
        }
        Ok(Arc::new(Self {
            sessions: sessions.into_boxed_slice(),
            next: AtomicUsize::new(0),
            contended: AtomicU64::new(0),
            gate_rms: config.gate_rms.max(0.0),
        }))
    }

    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Chunks that found every session busy and waited for one.
    pub fn contended_runs(&self) -> u64 {
        self.contended.load(Ordering::Relaxed)
    }

    /// A free session, else (counted) the one this call was due to use.
    fn session(&self) -> MutexGuard<'_, Session> {
        let count = self.sessions.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % count;
        for i in 0..count {
            if let Ok(session) = self.sessions[(start + i) % count].try_lock() {
                return session;
            }
        }
        self.contended.fetch_add(1, Ordering::Relaxed);
        // A panic while a session was locked cannot leave it half-updated (a run either
        // completes or fails inside ONNX Runtime), so a poisoned lock is still usable.
        self.sessions[start].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn build_session(environment: &ort::environment::Environment, model: &[u8]) -> Result<Session, ort::Error> {
    // One thread per session: a chunk is too small to split, and parallelism comes from
    // running several calls' chunks on several sessions at once.
    Session::builder(environment)?
        .with_intra_threads(1)?
        .with_inter_threads(1)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .commit_from_memory(model)
}

/// Checks the session has Silero's inputs, in the order `run_model` passes them, and outputs,
/// with the expected element types.
fn check_signature(session: &Session) -> Result<(), String> {
    let check = |outlet: &ort::value::Outlet, ty: TensorElementType| match outlet.dtype() {
        ValueType::Tensor { ty: actual, .. } if *actual == ty => Ok(()),
        other => Err(format!("`{}` is {other:?}, expected a {ty:?} tensor", outlet.name())),
    };
    let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    if names != [INPUT, STATE, SAMPLE_RATE] {
        return Err(format!("inputs {names:?}, expected [{INPUT}, {STATE}, {SAMPLE_RATE}]"));
    }
    for (outlet, ty) in
        session.inputs().iter().zip([TensorElementType::Float32, TensorElementType::Float32, TensorElementType::Int64])
    {
        check(outlet, ty)?;
    }
    for name in [OUTPUT, STATE_OUT] {
        let outlet =
            session.outputs().iter().find(|o| o.name() == name).ok_or_else(|| format!("no `{name}` output"))?;
        check(outlet, TensorElementType::Float32)?;
    }
    Ok(())
}

/// Counters of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VadStats {
    /// Chunks scored by the model.
    pub chunks_run: u64,
    /// Chunks the energy gate scored 0 without running the model.
    pub chunks_gated: u64,
}

/// One call's VAD: push 20 ms frames, get a speech probability per frame.
pub struct VadStream {
    model: Arc<VadModel>,
    rate: VadRate,
    /// `[1, context + chunk]`: the previous chunk's tail, then the samples collected so far.
    input: Tensor<f32>,
    state: Tensor<f32>,
    sample_rate: Tensor<i64>,
    /// Preallocates `output` and `stateN`, so a run writes into this stream's own tensors.
    run_options: RunOptions<HasSelectedOutputs>,
    /// Samples collected towards the next chunk.
    filled: usize,
    /// Sum of squares of those samples, for the gate.
    energy: f32,
    /// Consecutive chunks the gate has skipped.
    gated_run: u32,
    probability: f32,
    stats: VadStats,
}

impl std::fmt::Debug for VadStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VadStream")
            .field("rate", &self.rate)
            .field("filled", &self.filled)
            .field("probability", &self.probability)
            .field("stats", &self.stats)
            .finish()
    }
}

impl VadStream {
    pub fn new(model: Arc<VadModel>, rate: VadRate) -> Result<Self, VadError> {
        let width = rate.context_len() + rate.chunk_len();
        let input = Tensor::from_array(([1, width], vec![0.0f32; width]))?;
        let state = Tensor::from_array((STATE_SHAPE, vec![0.0f32; STATE_LEN]))?;
        // A scalar, as the model declares it.
        let sample_rate = Tensor::from_array(([0usize; 0], vec![i64::from(rate.hz())]))?;
        // Outputs bound to preallocated tensors must come from an ONNX Runtime allocator.
        let allocator = Allocator::default();
        let outputs = OutputSelector::default()
            .preallocate(OUTPUT, Tensor::<f32>::new(&allocator, [1usize, 1])?)
            .preallocate(STATE_OUT, Tensor::<f32>::new(&allocator, STATE_SHAPE)?);
        let run_options = RunOptions::new()?.with_outputs(outputs);
        Ok(Self {
            model,
            rate,
            input,
            state,
            sample_rate,
            run_options,
            filled: 0,
            energy: 0.0,
            gated_run: 0,
            probability: 0.0,
            stats: VadStats::default(),
        })
    }

    pub fn rate(&self) -> VadRate {
        self.rate
    }

    /// The newest chunk's speech probability (0 before the first chunk).
    pub fn probability(&self) -> f32 {
        self.probability
    }

    pub fn stats(&self) -> VadStats {
        self.stats
    }

    /// Forgets the audio so far (a new call, or a stream that must start afresh).
    pub fn reset(&mut self) {
        self.input.extract_tensor_mut().1.fill(0.0);
        self.reset_state();
        self.filled = 0;
        self.energy = 0.0;
        self.gated_run = 0;
        self.probability = 0.0;
    }

    fn reset_state(&mut self) {
        self.state.extract_tensor_mut().1.fill(0.0);
    }

    /// Feeds PCM16 samples (normally one 20 ms frame) and returns the frame's speech
    /// probability: the highest score of the chunks it completed, else the last score.
    pub fn push_i16(&mut self, frame: &[i16]) -> Result<f32, VadError> {
        self.push_with(frame, crate::media::pcm::sample_to_f32)
    }

    /// Like [`VadStream::push_i16`], for f32 samples at full scale ±1.0.
    pub fn push_f32(&mut self, frame: &[f32]) -> Result<f32, VadError> {
        self.push_with(frame, |s| s)
    }

    fn push_with<T: Copy>(&mut self, frame: &[T], to_f32: impl Fn(T) -> f32) -> Result<f32, VadError> {
        let (context, chunk) = (self.rate.context_len(), self.rate.chunk_len());
        let mut best: Option<f32> = None;
        let mut frame_energy = 0.0f32;
        let mut rest = frame;
        while !rest.is_empty() {
            let take = rest.len().min(chunk - self.filled);
            let (head, tail) = rest.split_at(take);
            let start = context + self.filled;
            let mut energy = 0.0f32;
            for (dst, &src) in self.input.extract_tensor_mut().1[start..start + take].iter_mut().zip(head) {
                let sample = to_f32(src);
                energy += sample * sample;
                *dst = sample;
            }
            self.energy += energy;
            frame_energy += energy;
            self.filled += take;
            rest = tail;
            if self.filled == chunk {
                let probability = self.score_chunk()?;
                best = Some(best.map_or(probability, |b: f32| b.max(probability)));
            }
        }
        if let Some(probability) = best {
            self.probability = probability;
        }
        // A silent frame is silence now, not when its chunk completes: the end of a turn is
        // then timed to the frame, not to Silero's 32 ms chunk (the chunk keeps its score).
        if !frame.is_empty() && (frame_energy / frame.len() as f32).sqrt() < self.model.gate_rms {
            return Ok(0.0);
        }
        Ok(self.probability)
    }

    /// Scores the full chunk in `input`, then moves its tail to the context slot.
    fn score_chunk(&mut self) -> Result<f32, VadError> {
        let chunk = self.rate.chunk_len();
        let rms = (self.energy / chunk as f32).sqrt();
        let result = if rms < self.model.gate_rms {
            self.stats.chunks_gated += 1;
            self.gated_run += 1;
            if self.gated_run == HOLD_GATED_CHUNKS {
                self.reset_state();
            }
            Ok(0.0)
        } else {
            self.stats.chunks_run += 1;
            self.gated_run = 0;
            self.run_model()
        };
        if result.is_err() {
            // The chunk is lost to the model, so its state no longer follows the audio: start
            // afresh rather than splice around the hole.
            self.reset_state();
        }
        let input = self.input.extract_tensor_mut().1;
        input.copy_within(chunk.., 0);
        self.filled = 0;
        self.energy = 0.0;
        result
    }

    fn run_model(&mut self) -> Result<f32, VadError> {
        let mut session = self.model.session();
        let outputs = session.run_with_options(
            ort::inputs![
                // Session inputs are positional in the model's order, checked at load time.
                &self.input,
                &self.state,
                &self.sample_rate
            ],
            &self.run_options,
        )?;
        let probability = outputs
            .get(OUTPUT)
            .ok_or_else(|| VadError::Inference("no `output`".into()))?
            .try_extract_tensor::<f32>()?
            .1
            .first()
            .copied()
            .ok_or_else(|| VadError::Inference("empty `output`".into()))?;
        let next_state = outputs
            .get(STATE_OUT)
            .ok_or_else(|| VadError::Inference("no `stateN`".into()))?
            .try_extract_tensor::<f32>()?
            .1;
        let state = self.state.extract_tensor_mut().1;
        if next_state.len() != state.len() {
            return Err(VadError::Inference(format!(
                "`stateN` has {} values, expected {}",
                next_state.len(),
                state.len()
            )));
        }
        state.copy_from_slice(next_state);
        Ok(probability)
    }
}
