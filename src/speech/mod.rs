//! The speech engine: the models behind a call (Silero VAD, Smart Turn end of turn, whisper
//! STT, Piper TTS) and the pools that share them between calls.
//!
//! Models are loaded once per process and shared; what is per call (VAD state tensors, a
//! whisper state borrowed from the pool) is small. Everything here blocks a thread while it
//! computes, so callers run it on `spawn_blocking` or a pool thread, never on the reactor.
//!
//! - `models`: where the model files are (`models/` by default) and what is missing.
//! - `onnx`: the process-wide ONNX Runtime, loaded from `models/lib/libonnxruntime.so`.
//! - `vad`: Silero VAD, one shared session pool, per-call streams scoring 20 ms frames.
//! - `turn`: Smart Turn v3.2, whether a pause ends the caller's turn (Whisper log-mel features,
//!   a pool of ONNX sessions behind a bounded queue).
//! - `stt`: the whisper pool (one model, a worker per state, bounded queue) and transcripts.
//! - `tts`: Piper voices with espeak-ng phonemes, a pool streaming sentence by sentence, LRU cache.
//! - `engine`: the models together, as a call uses them.

pub mod engine;
pub mod models;
pub mod onnx;
pub mod stt;
pub mod tts;
pub mod turn;
pub mod vad;

pub use models::{ModelPaths, SttModel};

/// Everything that can go wrong loading or running a speech model.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// A model file is not where it should be: `bash models/fetch.sh` makes it.
    #[error("{what} not found at {path} (run `bash models/fetch.sh`)")]
    MissingModel { what: &'static str, path: std::path::PathBuf },
    /// `--stt-model` names no model `models/fetch.sh` makes.
    #[error("unknown whisper model '{name}': expected one of {known} (made by `bash models/fetch.sh`)")]
    UnknownSttModel { name: String, known: String },
    /// The chosen whisper model's file is missing; `fetch` is the command that makes it.
    #[error("whisper model {name} not found at {path} (run `{fetch}`)")]
    MissingSttModel { name: &'static str, path: std::path::PathBuf, fetch: &'static str },
    /// ONNX Runtime could not be loaded or a session could not be built or run.
    #[error("onnx runtime: {0}")]
    Onnx(String),
    /// whisper.cpp failed to load the model or to transcribe.
    #[error("whisper: {0}")]
    Whisper(String),
    /// The espeak-ng command line (phonemizer for Piper voices) failed or is missing.
    #[error("espeak-ng: {0}")]
    Phonemizer(String),
    /// A voice's JSON config is unreadable or lacks what synthesis needs.
    #[error("voice config {path}: {reason}")]
    VoiceConfig { path: std::path::PathBuf, reason: String },
    /// The input cannot be processed (wrong sample rate, empty audio, text with nothing to say).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The pool's queue is full: the caller should shed load rather than wait.
    #[error("{0} queue is full")]
    Overloaded(&'static str),
    /// The pool's worker threads are gone (process shutting down).
    #[error("{0} pool is shut down")]
    PoolClosed(&'static str),
}

impl From<ort::Error> for SpeechError {
    fn from(err: ort::Error) -> Self {
        SpeechError::Onnx(err.to_string())
    }
}
