//! A call's model work, off the session's loop: each request runs as a small task on the shared
//! pools (STT, end-of-turn, TTS) and its result comes back to the session as a core `Input` over
//! a bounded channel.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::dialogue::LineId;
use crate::media::decode::resample_i16;
use crate::session::core::{Heard, Input, RATE, Verdict};
use crate::speech::SpeechError;
use crate::speech::engine::SpeechEngine;

/// A bot line starts where its audio first exceeds this level (about -32 dBFS).
const LINE_ONSET_LEVEL: i16 = 800;

/// How long a caller turn may wait for the STT pool to take it when it is full: a turn is the
/// caller's answer, so it is worth a short wait; past this the answer counts as lost.
const STT_ADMISSION_WAIT: Duration = Duration::from_secs(2);

/// Synthesizes a line sentence by sentence and sends its `RATE` audio to the session.
pub fn spawn_line(engine: &Arc<SpeechEngine>, line: LineId, text: String, out: mpsc::Sender<Input>) {
    let engine = engine.clone();
    tokio::spawn(async move {
        let failed = synthesize_line(&engine, line, &text, &out).await.err().map(|e| e.to_string());
        let _ = out.send(Input::LineEnd { line, failed }).await;
    });
}

async fn synthesize_line(
    engine: &SpeechEngine,
    line: LineId,
    text: &str,
    out: &mpsc::Sender<Input>,
) -> Result<(), SpeechError> {
    let mut stream = engine.tts.synthesize_stream(None, text)?;
    let mut first = true;
    while let Some(chunk) = stream.recv().await {
        let chunk = chunk?;
        // The engine's pool synthesizes (and caches) at the line's rate; another rate would
        // be a pool configured for something else.
        let mut pcm = if chunk.sample_rate == RATE {
            chunk.samples.to_vec()
        } else {
            resample_i16(&chunk.samples, chunk.sample_rate, RATE)
                .map_err(|e| SpeechError::InvalidInput(e.to_string()))?
        };
        if std::mem::take(&mut first) {
            // The line starts with its first sound (10 ms lead-in), not the voice's silence.
            let quiet = crate::media::pcm::leading_silence(&pcm, LINE_ONSET_LEVEL, RATE as usize / 100);
            pcm.drain(..quiet);
        }
        if out.send(Input::LineAudio { line, pcm }).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Transcribes a caller turn (16 kHz audio) on the STT pool, trying again every 100 ms while
/// the pool is full (up to `STT_ADMISSION_WAIT`); the pool's bounded queue stays the
/// back-pressure.
pub fn spawn_transcription(
    engine: &Arc<SpeechEngine>,
    id: u64,
    audio_16k: Arc<Vec<f32>>,
    prompt: Option<String>,
    out: mpsc::Sender<Input>,
) {
    let engine = engine.clone();
    tokio::spawn(async move {
        let deadline = Instant::now() + STT_ADMISSION_WAIT;
        let result = loop {
            match engine.stt.transcribe_with_prompt(audio_16k.to_vec(), prompt.clone()).await {
                Err(SpeechError::Overloaded(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => break other,
            }
        };
        let result = result.map(|t| Heard { text: t.text, confidence: t.confidence }).map_err(|e| e.to_string());
        let _ = out.send(Input::Transcribed { id, result }).await;
    });
}

/// Asks the end-of-turn model whether the caller's turn (16 kHz audio) is finished. A busy
/// or failed model is `Unavailable`: the core then falls back on silence.
pub fn spawn_judgement(engine: &Arc<SpeechEngine>, id: u64, audio_16k: Arc<Vec<f32>>, out: mpsc::Sender<Input>) {
    let engine = engine.clone();
    tokio::spawn(async move {
        let verdict = match engine.turn.predict(audio_16k.to_vec()).await {
            Ok(prediction) if prediction.complete => Verdict::Complete,
            Ok(_) => Verdict::Incomplete,
            Err(error) => {
                tracing::debug!(%error, "no end-of-turn verdict");
                Verdict::Unavailable
            }
        };
        let _ = out.send(Input::Judged { id, verdict }).await;
    });
}
