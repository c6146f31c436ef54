//! The models a call needs, loaded once per process and shared by every call.

use std::sync::Arc;

use super::stt::{SttConfig, SttPool};
use super::tts::{TtsConfig, TtsPool};
use super::turn::{TurnConfig, TurnPool};
use super::vad::{VadConfig, VadModel};
use super::{ModelPaths, SpeechError, SttModel};

pub struct SpeechEngine {
    pub vad: Arc<VadModel>,
    /// Smart Turn: whether a pause ends the caller's turn.
    pub turn: TurnPool,
    pub stt: SttPool,
    pub tts: TtsPool,
}

impl std::fmt::Debug for SpeechEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechEngine").finish_non_exhaustive()
    }
}

impl SpeechEngine {
    /// Loads Silero VAD, Smart Turn, the whisper model `stt_model` and the default Piper voice
    /// from `paths` (blocking: about a second; call it on a blocking thread).
    pub fn load(paths: &ModelPaths, stt_model: SttModel) -> Result<SpeechEngine, SpeechError> {
        let vad = VadModel::load(paths, &VadConfig::default()).map_err(|e| SpeechError::Onnx(e.to_string()))?;
        // A single-threaded worker per core, like STT: a pause's question runs beside the
        // turn's transcription, never behind it.
        let turn = TurnPool::new(paths, TurnConfig::default())?;
        // A single-threaded worker per core (SttConfig's default): two calls' turns are
        // transcribed at once, and no ggml barrier spins against other calls' VAD and TTS.
        let stt = SttPool::new(&stt_model.require(paths)?, SttConfig::default())?;
        // A line that cannot be queued would be skipped mid-call, which is worse than saying it
        // a little late: the queue is deep enough for every call slot to wait for a sentence.
        let mut tts_config = TtsConfig::default();
        tts_config.queue_depth = tts_config.queue_depth.max(64);
        // Lines are cached at the calls' rate: a cached line is played without resampling.
        tts_config.output_rate = Some(crate::session::core::RATE);
        let tts = TtsPool::new(paths, tts_config)?;
        Ok(SpeechEngine { vad, turn, stt, tts })
    }
}
