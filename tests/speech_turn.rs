//! Smart Turn v3.2 (`speech::turn`) with the real model: the pool gives the probabilities the
//! reference Python code gives, refuses what it cannot take, and is checked on complete and
//! incomplete utterances said by voices that are not the bot's (espeak-ng, flite), carried as a
//! phone call carries them (8 kHz G.711 µ-law, back up to 16 kHz).
//!
//! Needs `bash models/fetch.sh`, `espeak-ng` and `flite` (scripts/setup.sh --test).

#[path = "support/speech_audio.rs"]
mod speech_audio;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use callcenter::media::decode::{decode_file, resample_clip};
use callcenter::media::{g711, pcm};
use callcenter::speech::SpeechError;
use callcenter::speech::turn::{TurnConfig, TurnPool};
use speech_audio::{jfk, model_paths};

fn pool(config: TurnConfig) -> TurnPool {
    TurnPool::new(&model_paths(), config).unwrap_or_else(|e| panic!("{e} (run `bash models/fetch.sh` first)"))
}

/// One pool for the tests that only predict, as in the server.
fn shared() -> &'static TurnPool {
    static POOL: OnceLock<TurnPool> = OnceLock::new();
    POOL.get_or_init(|| pool(TurnConfig::for_cores(2)))
}

/// jfk.wav cuts (samples) and the probability the reference gives for each: the pipecat-ai
/// 1.14.0 wheel's `compute_whisper_log_mel_features` after its `truncate_audio_to_last_n_seconds`,
/// run by the Python onnxruntime 1.31.1 (the version of models/lib) on one thread.
const JFK_REFERENCE: [(usize, usize, f32); 4] = [
    (0, 176_000, 0.587_704_66),       // the whole 11 s: only the last 8 s are heard
    (0, 33_600, 0.064_264_3),         // "And so, my fellow Americans,"
    (128_000, 176_000, 0.977_712_04), // "ask what you can do for your country."
    (51_200, 68_800, 0.089_167_39),   // "ask not"
];

#[test]
fn probabilities_are_the_reference_codes() {
    let audio = jfk();
    for (from, to, expected) in JFK_REFERENCE {
        let prediction = shared().predict_blocking(&audio[from..to]).unwrap();
        eprintln!("jfk {from}..{to}: {:.6} (reference {expected:.6})", prediction.probability);
        // The same int8 graph on the same runtime: only the features' rounding may differ.
        assert!(
            (prediction.probability - expected).abs() < 1e-3,
            "jfk {from}..{to}: {} against the reference's {expected}",
            prediction.probability
        );
        assert_eq!(prediction.complete, expected > 0.5);
        assert!(prediction.features > std::time::Duration::ZERO && prediction.inference > std::time::Duration::ZERO);
    }
}

#[test]
fn bad_input_and_a_missing_model_are_named() {
    assert!(matches!(shared().predict_blocking(&[]), Err(SpeechError::InvalidInput(_))));
    let mut with_nan = vec![0.1f32; 16_000];
    with_nan[15_000] = f32::NAN;
    assert!(matches!(shared().predict_blocking(&with_nan), Err(SpeechError::InvalidInput(_))));
    // A NaN older than the last 8 s is never heard, so it is not refused.
    let mut long = vec![0.0f32; 9 * 16_000];
    long[100] = f32::NAN;
    assert!(shared().predict_blocking(&long).is_ok());

    let empty = tempfile::tempdir().unwrap();
    let paths = callcenter::speech::ModelPaths::new(empty.path());
    // ONNX Runtime is found through the real models directory; the model is not.
    std::fs::create_dir_all(empty.path().join("lib")).unwrap();
    std::os::unix::fs::symlink(model_paths().onnxruntime(), paths.onnxruntime()).unwrap();
    match TurnPool::new(&paths, TurnConfig::for_cores(1)) {
        Err(SpeechError::MissingModel { path, .. }) => assert_eq!(path, paths.smart_turn()),
        other => panic!("expected MissingModel, got {other:?}"),
    }
    let zero = TurnConfig { workers: 0, ..TurnConfig::for_cores(1) };
    assert!(matches!(TurnPool::new(&model_paths(), zero), Err(SpeechError::InvalidInput(_))));
}

/// One worker and one queue place: of four clips submitted at once, two are admitted and two
/// refused at once. Admission counts clips in the pool, not what the worker has picked up, so
/// this does not depend on thread timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once() {
    let turn = Arc::new(pool(TurnConfig { workers: 1, threads_per_worker: 1, queue_depth: 1, threshold: 0.5 }));
    let audio = jfk();
    let results = futures::future::join_all((0..4).map(|_| turn.predict(audio.clone()))).await;
    let refused = results.iter().filter(|r| matches!(r, Err(SpeechError::Overloaded("turn")))).count();
    let answered = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((answered, refused), (2, 2), "{results:?}");
    assert_eq!(turn.in_pool(), 0);
    // Room again once the pool has drained.
    assert!(turn.predict(audio).await.is_ok());
}

/// What a caller says, complete, and cut where a caller who pauses mid-sentence would stop.
const UTTERANCES: [(&str, &str); 8] = [
    ("I would like to book a table for two.", "I would like to book a table for"),
    ("Yes, sure, go ahead.", "Yes, sure, and"),
    ("That sounds good to me.", "Well, um"),
    ("No, I think that is too expensive.", "No, I think that"),
    ("Can you call me back tomorrow?", "Can you call me back tomorrow at"),
    ("What time do you open on Monday?", "What time do you"),
    ("Yes, that is correct.", "Yes, that is"),
    ("I already paid that bill last week.", "I already paid that bill because"),
];

/// Callers in voices that are not the bot's Piper voice.
const VOICES: [Voice; 7] = [
    Voice::Espeak("en-us"),
    Voice::Espeak("en-gb"),
    Voice::Espeak("en-us+f3"),
    Voice::Flite("slt"),
    Voice::Flite("rms"),
    Voice::Flite("awb"),
    Voice::Flite("kal"),
];

#[derive(Debug, Clone, Copy)]
enum Voice {
    Espeak(&'static str),
    Flite(&'static str),
}

impl Voice {
    /// `text` in this voice, as a WAV file in `dir`; its own rate.
    fn say(self, text: &str, dir: &Path) -> (Vec<f32>, u32) {
        let wav = dir.join("say.wav");
        let (program, status) = match self {
            Voice::Espeak(voice) => {
                ("espeak-ng", Command::new("espeak-ng").args(["-v", voice, "-w"]).arg(&wav).arg(text).status())
            }
            Voice::Flite(voice) => {
                ("flite", Command::new("flite").args(["-voice", voice, "-t", text, "-o"]).arg(&wav).status())
            }
        };
        let status = status.unwrap_or_else(|e| panic!("{program}: {e} (bash scripts/setup.sh --test installs it)"));
        assert!(status.success(), "{program} failed for {self:?} {text:?}");
        let audio = decode_file(&wav).unwrap();
        (audio.samples, audio.sample_rate)
    }
}

/// The caller's side of a call: 8 kHz G.711 µ-law, then up to 16 kHz as the gateway does.
fn through_the_phone(audio: &[f32], rate: u32) -> Vec<f32> {
    let at_8k = resample_clip(audio, rate, 8_000).unwrap();
    let mut samples = vec![0i16; at_8k.len()];
    pcm::f32_to_i16(&at_8k, &mut samples);
    let mut ulaw = vec![0u8; samples.len()];
    g711::encode_ulaw(&samples, &mut ulaw);
    g711::decode_ulaw(&ulaw, &mut samples);
    let mut back = vec![0f32; samples.len()];
    pcm::i16_to_f32(&samples, &mut back);
    resample_clip(&back, 8_000, 16_000).unwrap()
}

/// A turn as the reference hands it to the model: 0.5 s before the speech (pipecat's
/// `pre_speech_ms`), the speech without the synthesizer's own silences, then the 200 ms pause
/// after which the VAD asks.
fn as_turn(speech: &[f32]) -> Vec<f32> {
    const QUIET: f32 = 0.005; // -46 dBFS: above µ-law's idle codes, below any speech sound
    let first = speech.iter().position(|s| s.abs() > QUIET).unwrap_or(0);
    let last = speech.iter().rposition(|s| s.abs() > QUIET).map_or(speech.len(), |i| i + 1);
    let mut turn = vec![0.0; 8_000];
    turn.extend_from_slice(&speech[first..last]);
    turn.resize(turn.len() + 3_200, 0.0);
    turn
}

/// The gate before Smart Turn decides anything in a call: on clear complete and incomplete
/// utterances in seven voices through the phone, at least 90% must be judged right.
///
/// Ignored because Smart Turn v3.2 does not pass it: it is right on 78 of 112 (70%; per voice
/// 8 to 14 of 16), and 23 of the 56 incomplete utterances come out as complete (mostly those
/// ending in "for", "at", "that", "do you"). The Python reference gives the same probabilities
/// (`probabilities_are_the_reference_codes`), so this is the model on these voices, not our
/// features. docs/BENCHMARKS.md ("Smart Turn v3.2") has the table. Run it with
/// `cargo test --test speech_turn -- --ignored --nocapture`.
#[test]
#[ignore = "Smart Turn v3.2 is right on 78 of 112 of these utterances, not 90% (docs/BENCHMARKS.md)"]
fn complete_and_incomplete_utterances_in_other_voices_through_the_phone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut right, mut total) = (0, 0);
    let mut wrong = Vec::new();
    eprintln!("{:<18} {:>8} {:>10}  utterance (complete / incomplete)", "voice", "complete", "incomplete");
    for voice in VOICES {
        for (complete, incomplete) in UTTERANCES {
            let [p_complete, p_incomplete] = [complete, incomplete].map(|text| {
                let (speech, rate) = voice.say(text, dir.path());
                shared().predict_blocking(&as_turn(&through_the_phone(&speech, rate))).unwrap()
            });
            eprintln!(
                "{:<18} {:>8.3} {:>10.3}  {complete} / {incomplete}",
                format!("{voice:?}"),
                p_complete.probability,
                p_incomplete.probability
            );
            for (prediction, expected, text) in [(p_complete, true, complete), (p_incomplete, false, incomplete)] {
                total += 1;
                if prediction.complete == expected {
                    right += 1;
                } else {
                    wrong.push(format!("{voice:?} {text:?}: {:.3}", prediction.probability));
                }
            }
        }
    }
    let accuracy = f64::from(right) / f64::from(total);
    eprintln!("right: {right} of {total} ({:.0}%)", accuracy * 100.0);
    assert!(accuracy >= 0.9, "Smart Turn was right on {right} of {total}; wrong: {wrong:#?}");
}
