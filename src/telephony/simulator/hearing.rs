//! What the bot's audio said, by the node's own STT, for the simulated callees.
//!
//! The same audio is transcribed once per speech engine: a template's fixed lines come out of
//! the TTS cache byte for byte, so every callee of a campaign hears the same greeting, and
//! callees that hear it at the same moment (calls placed together) share one transcription
//! instead of queueing one each on the STT pool the gateway needs for their answers. Whisper
//! decodes greedily, so a second transcription would give the same text anyway.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::media::decode::{DecodeError, resample_clip};
use crate::media::{g711, pcm};
use crate::speech::SpeechError;
use crate::speech::engine::SpeechEngine;

#[derive(Debug, thiserror::Error)]
pub enum HearingError {
    #[error("speech-to-text: {0}")]
    Speech(#[from] SpeechError),
    #[error("resampling: {0}")]
    Resample(#[from] DecodeError),
}

/// Transcriptions remembered (texts of a few hundred lines: a few kilobytes).
const REMEMBERED: usize = 512;
/// Waiting for a full STT pool: attempts, and the pause between them.
const BUSY_RETRIES: u32 = 100;
const BUSY_RETRY_PAUSE: Duration = Duration::from_millis(100);

type Transcription = Shared<BoxFuture<'static, Result<String, Arc<HearingError>>>>;

/// A transcription (done or under way) of one clip by one engine.
struct Remembered {
    engine: Weak<SpeechEngine>,
    text: Transcription,
}

/// Process-wide: the carrier is a unit value the session layer creates, and entries are
/// tied to their engine, so one node's texts never answer another's (tests start many).
fn memory() -> &'static Mutex<HashMap<u64, Remembered>> {
    static MEMORY: OnceLock<Mutex<HashMap<u64, Remembered>>> = OnceLock::new();
    MEMORY.get_or_init(Default::default)
}

/// The text of `mulaw` (8 kHz), transcribed by `engine`'s STT unless it already was.
pub async fn transcribe(engine: &Arc<SpeechEngine>, mulaw: Vec<u8>) -> Result<String, Arc<HearingError>> {
    let key = {
        let mut hasher = DefaultHasher::new();
        mulaw.hash(&mut hasher);
        hasher.finish()
    };
    let text = remembered_or_started(engine, key, mulaw);
    let result = text.clone().await;
    if result.is_err() {
        // A failure (a pool that stayed full) is not what the audio says: try again next time.
        let mut memory = memory().lock().unwrap_or_else(|e| e.into_inner());
        if memory.get(&key).is_some_and(|r| r.text.ptr_eq(&text)) {
            memory.remove(&key);
        }
    }
    result
}

fn remembered_or_started(engine: &Arc<SpeechEngine>, key: u64, mulaw: Vec<u8>) -> Transcription {
    let mut memory = memory().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(remembered) = memory.get(&key)
        && remembered.engine.upgrade().is_some_and(|e| Arc::ptr_eq(&e, engine))
    {
        return remembered.text.clone();
    }
    if memory.len() >= REMEMBERED {
        memory.retain(|_, r| r.engine.strong_count() > 0);
        if memory.len() >= REMEMBERED {
            memory.clear();
        }
    }
    let text = stt(Arc::clone(engine), mulaw).map(|r| r.map_err(Arc::new)).boxed().shared();
    memory.insert(key, Remembered { engine: Arc::downgrade(engine), text: text.clone() });
    text
}

/// Transcribes on the node's STT pool; a full pool is waited for (the gateway's own turns
/// get the same treatment), a closed one is an error.
async fn stt(engine: Arc<SpeechEngine>, mulaw: Vec<u8>) -> Result<String, HearingError> {
    let mut pcm16 = vec![0i16; mulaw.len()];
    g711::decode_ulaw(&mulaw, &mut pcm16);
    let mut floats = vec![0f32; pcm16.len()];
    pcm::i16_to_f32(&pcm16, &mut floats);
    let audio_16k = resample_clip(&floats, 8000, 16000)?;
    let mut attempts = 0;
    loop {
        match engine.stt.transcribe(audio_16k.clone()).await {
            Ok(transcript) => return Ok(transcript.text),
            Err(SpeechError::Overloaded(_)) if attempts < BUSY_RETRIES => {
                attempts += 1;
                tokio::time::sleep(BUSY_RETRY_PAUSE).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}
