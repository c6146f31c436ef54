//! TTS with the real Piper voice (`models/voices/en_US-joe-medium`), real ONNX Runtime and the
//! real `espeak-ng` command line. `bash models/fetch.sh` must have run.
//!
//! `cargo test --test speech_tts`

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use callcenter::speech::models::DEFAULT_VOICE;
use callcenter::speech::tts::{Espeak, EspeakMode, TtsConfig, TtsPool};
use callcenter::speech::{ModelPaths, SpeechError};

fn paths() -> ModelPaths {
    match std::env::var_os("CALLCENTER_MODELS_DIR") {
        Some(dir) if !dir.is_empty() => ModelPaths::new(dir),
        _ => ModelPaths::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models")),
    }
}

/// One pool for the tests that need no special configuration (a voice session is ~1 s to load).
/// Its queue is deep because the tests run in parallel.
fn pool() -> &'static TtsPool {
    static POOL: OnceLock<TtsPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let config = TtsConfig { queue_depth: 64, ..TtsConfig::for_cores(2) };
        TtsPool::new(&paths(), config).expect("TTS pool (run `bash models/fetch.sh`; needs espeak-ng)")
    })
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// Seconds per word of `samples` at `rate` for a text of `words` words.
fn secs_per_word(samples: usize, rate: u32, words: usize) -> f64 {
    samples as f64 / f64::from(rate) / words as f64
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

#[test]
fn the_default_voice_speaks_at_its_rate_for_a_plausible_time() {
    let text = "Thank you for calling. How can I help you today?";
    let out = pool().synthesize_blocking(None, text).unwrap();
    assert_eq!(out.sample_rate, 22_050);
    assert_eq!(out.sentences, 2);
    // Not silence: the voice's level is normalised to 90 % of full scale per sentence.
    let peak = out.samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
    assert!(peak > 29_000, "peak {peak}");
    assert!(rms(&out.samples) > 1_000.0, "rms {}", rms(&out.samples));
    // Measured here: 0.25-0.33 s per word for plain sentences (pauses included).
    let per_word = secs_per_word(out.samples.len(), out.sample_rate, words(text));
    assert!((0.2..0.6).contains(&per_word), "{per_word:.3} s per word");
}

#[test]
fn longer_text_takes_longer_and_numbers_are_spoken() {
    let short = pool().synthesize_blocking(None, "Yes.").unwrap();
    let text = "Your appointment is on March 3rd at 4:30 pm, and the total is $120.50. \
                Call us back at 555-0199 if anything changes.";
    let long = pool().synthesize_blocking(None, text).unwrap();
    assert!(short.duration().as_secs_f64() < 1.0, "{:?}", short.duration());
    // "555-0199" is read as seven digits and "$120.50" as dollars and cents: more words than
    // written, so the bound is looser than for plain words.
    let per_word = secs_per_word(long.samples.len(), long.sample_rate, words(text));
    assert!((0.3..1.2).contains(&per_word), "{per_word:.3} s per written word");
    assert!(long.duration() > short.duration() * 8);
}

#[tokio::test]
async fn the_first_sentence_arrives_before_the_reply_is_synthesized() {
    let text = "Hello, this is the billing department. I can see your account here. \
                Let me check the last payment for you.";
    let mut stream = pool().synthesize_stream(None, text).unwrap();
    assert_eq!(stream.sentences(), 3);
    assert_eq!(stream.sample_rate(), 22_050);
    let first = stream.recv().await.unwrap().unwrap();
    assert_eq!(first.index, 0);
    assert_eq!(&*first.text, "Hello, this is the billing department.");
    assert!(!first.cached);
    assert!(first.duration().as_secs_f64() > 1.0);
    // The rest is still being synthesized when the first chunk is in hand.
    assert!(stream.try_recv().is_none(), "the second sentence was ready as early as the first");
    let second = stream.recv().await.unwrap().unwrap();
    let third = stream.recv().await.unwrap().unwrap();
    assert_eq!((second.index, third.index), (1, 2));
    assert_eq!(&*third.text, "Let me check the last payment for you.");
    assert!(stream.recv().await.is_none());
}

#[tokio::test]
async fn a_cache_hit_returns_the_same_samples() {
    let text = "Please hold while I transfer your call. Thank you for waiting.";
    let first = pool().synthesize(None, text).await.unwrap();
    assert_eq!(first.cached, 0);
    let mut again = pool().synthesize_stream(None, text).unwrap();
    let a = again.recv().await.unwrap().unwrap();
    let b = again.recv().await.unwrap().unwrap();
    assert!(a.cached && b.cached);
    let joined: Vec<i16> = a.samples.iter().chain(b.samples.iter()).copied().collect();
    assert_eq!(joined, first.samples);
    // A hit shares the cached buffer instead of copying it.
    let third = pool().synthesize_iter(None, text).unwrap().next().unwrap().unwrap();
    assert!(Arc::ptr_eq(&third.samples, &a.samples));
    // Same words, different punctuation: a different sentence (said differently).
    let question = pool().synthesize(None, "Thank you for waiting?").await.unwrap();
    assert_eq!(question.cached, 0);
}

#[test]
fn prewarm_fills_the_cache_once() {
    let lines = ["Your call may be recorded for quality purposes.", "Goodbye and have a nice day!"];
    let synthesized = pool().prewarm(None, &lines).unwrap().wait_blocking().unwrap();
    assert_eq!(synthesized, 2);
    for line in lines {
        assert!(pool().cache().contains(DEFAULT_VOICE, line), "{line}");
    }
    assert_eq!(pool().prewarm(None, &lines).unwrap().wait_blocking().unwrap(), 0);
    let out = pool().synthesize_blocking(None, &lines.join(" ")).unwrap();
    assert_eq!((out.sentences, out.cached), (2, 2));
}

#[test]
fn dropping_a_stream_stops_its_synthesis() {
    let config = TtsConfig { workers: 1, queue_depth: 4, ..TtsConfig::for_cores(2) };
    let pool = TtsPool::new(&paths(), config).unwrap();
    let sentences = [
        "One moment please.",
        "I am looking up your order now.",
        "It shipped on Monday from our warehouse.",
        "It should arrive by the end of the week.",
    ];
    let mut stream = pool.synthesize_iter(None, &sentences.join(" ")).unwrap();
    let first = stream.next().unwrap().unwrap();
    assert_eq!(first.index, 0);
    drop(stream);
    // One worker takes jobs in order: when this reply is done, the dropped one has stopped.
    pool.synthesize_blocking(None, "Okay.").unwrap();
    assert!(pool.cache().contains(DEFAULT_VOICE, sentences[0]));
    assert!(!pool.cache().contains(DEFAULT_VOICE, sentences[3]), "the last sentence was synthesized anyway");
}

#[test]
fn a_full_queue_is_refused() {
    let config = TtsConfig { workers: 1, queue_depth: 1, cache_bytes: 0, ..TtsConfig::for_cores(2) };
    let pool = TtsPool::new(&paths(), config).unwrap();
    let text = "This reply is long enough to keep the only worker busy for a while, sentence after sentence.";
    // One running, one waiting: the third of three back-to-back replies cannot be admitted.
    let results: Vec<_> = (0..3).map(|_| pool.synthesize_iter(None, text)).collect();
    let refused = results.iter().filter(|r| matches!(r, Err(SpeechError::Overloaded("tts")))).count();
    assert!(refused >= 1, "{results:?}");
    // The admitted ones still complete.
    for stream in results.into_iter().flatten() {
        assert!(stream.into_iter().all(|c| c.is_ok()));
    }
}

/// A voices directory holding the default voice (linked) and a copy of it under another name
/// whose config speaks 1.6x slower.
fn second_voice_dir(tmp: &Path) -> PathBuf {
    let voices = tmp.join("voices");
    std::fs::create_dir_all(&voices).unwrap();
    let (model, json) = paths().voice(DEFAULT_VOICE);
    std::os::unix::fs::symlink(&model, voices.join(format!("{DEFAULT_VOICE}.onnx"))).unwrap();
    std::os::unix::fs::symlink(&json, voices.join(format!("{DEFAULT_VOICE}.onnx.json"))).unwrap();
    std::fs::copy(&model, voices.join("acme-support.onnx")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    config["inference"]["length_scale"] = serde_json::json!(1.6);
    std::fs::write(voices.join("acme-support.onnx.json"), config.to_string()).unwrap();
    voices
}

#[test]
fn any_piper_voice_in_the_voices_dir_can_be_used() {
    let tmp = tempfile::tempdir().unwrap();
    let voices = second_voice_dir(tmp.path());
    let config = TtsConfig { voices_dir: Some(voices), ..TtsConfig::for_cores(2) };
    let pool = TtsPool::new(&paths(), config).unwrap();
    assert_eq!(pool.voices(), vec!["acme-support".to_owned(), DEFAULT_VOICE.to_owned()]);
    let text = "We are open from nine to five on weekdays.";
    let joe = pool.synthesize_blocking(None, text).unwrap();
    let acme = pool.synthesize_blocking(Some("acme-support"), text).unwrap();
    assert_eq!(acme.sample_rate, 22_050);
    assert!(rms(&acme.samples) > 1_000.0);
    let ratio = acme.samples.len() as f64 / joe.samples.len() as f64;
    assert!((1.3..1.9).contains(&ratio), "length_scale 1.6 gave {ratio:.2}x the duration");
    // The cache keeps voices apart.
    assert!(pool.cache().contains("acme-support", text) && pool.cache().contains(DEFAULT_VOICE, text));
}

#[test]
fn bad_requests_are_typed_errors() {
    let pool = pool();
    assert!(matches!(pool.synthesize_blocking(None, ""), Err(SpeechError::InvalidInput(_))));
    assert!(matches!(pool.synthesize_blocking(None, " ?! ... "), Err(SpeechError::InvalidInput(_))));
    let huge = "word ".repeat(2_000);
    assert!(matches!(pool.synthesize_blocking(None, &huge), Err(SpeechError::InvalidInput(_))));
    assert!(matches!(pool.synthesize_blocking(Some("../../etc/passwd"), "Hi."), Err(SpeechError::InvalidInput(_))));
    assert!(matches!(pool.synthesize_blocking(Some("no-such-voice"), "Hi."), Err(SpeechError::MissingModel { .. })));
}

#[test]
fn a_broken_voice_config_is_a_voice_config_error() {
    let tmp = tempfile::tempdir().unwrap();
    let voices = second_voice_dir(tmp.path());
    std::fs::write(voices.join("acme-support.onnx.json"), r#"{"audio": {"sample_rate": 22050}}"#).unwrap();
    let config = TtsConfig { voices_dir: Some(voices.clone()), ..TtsConfig::for_cores(2) };
    let pool = TtsPool::new(&paths(), config).unwrap();
    match pool.synthesize_blocking(Some("acme-support"), "Hello.") {
        Err(SpeechError::VoiceConfig { path, reason }) => {
            assert_eq!(path, voices.join("acme-support.onnx.json"));
            assert!(reason.contains("phoneme_id_map"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // As the default voice it stops the pool from starting.
    let config =
        TtsConfig { voices_dir: Some(voices), default_voice: "acme-support".into(), ..TtsConfig::for_cores(2) };
    assert!(matches!(TtsPool::new(&paths(), config), Err(SpeechError::VoiceConfig { .. })));
}

#[test]
fn a_missing_espeak_ng_is_reported_with_an_install_hint() {
    let config = TtsConfig { espeak_program: "/nonexistent/espeak-ng".into(), ..TtsConfig::for_cores(2) };
    match TtsPool::new(&paths(), config) {
        Err(SpeechError::Phonemizer(message)) => assert!(message.contains("apt-get install espeak-ng"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unknown_espeak_voice_is_a_phonemizer_error() {
    let err =
        Espeak::new(Path::new("espeak-ng"), "xx-nowhere", EspeakMode::Persistent, std::time::Duration::from_secs(5))
            .unwrap_err();
    assert!(matches!(err, SpeechError::Phonemizer(_)), "{err:?}");
}

#[test]
fn one_espeak_process_stays_in_step_and_agrees_with_a_fresh_one() {
    let timeout = std::time::Duration::from_secs(5);
    let mut persistent = Espeak::new(Path::new("espeak-ng"), "en-us", EspeakMode::Persistent, timeout).unwrap();
    let mut per_call = Espeak::new(Path::new("espeak-ng"), "en-us", EspeakMode::PerCall, timeout).unwrap();
    // espeak-ng prints "Mr. Smith" as two clauses; both belong to the one clause sent.
    let clauses = ["Hello", "Mr. Smith went to Washington", "world"];
    let first = persistent.phonemize(&clauses).unwrap();
    assert_eq!(first.len(), 3);
    assert!(first[0].contains("həlˈoʊ"), "{first:?}");
    assert!(first[1].contains("smˈɪθ") && first[1].contains("wˈɑːʃɪŋtən"), "{first:?}");
    assert!(first[2].contains("wˈɜːld"), "{first:?}");
    for _ in 0..20 {
        assert_eq!(persistent.phonemize(&clauses).unwrap(), first);
    }
    assert_eq!(per_call.phonemize(&clauses).unwrap(), first);
    // Raw phoneme input (`[[...]]`) is not passed through.
    let raw = persistent.phonemize(&["[[h@l'oU]]"]).unwrap();
    assert_ne!(raw[0], "həlˈoʊ");
}
