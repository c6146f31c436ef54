//! The STT pool with the real tiny.en model on real speech: jfk.wav, cuts of it, silence, and
//! espeak-ng sentences; the queue's back-pressure; concurrent clients; the question as whisper's
//! prompt (answers through a phone line, and no prompt written out for line noise).
//!
//! `bash models/fetch.sh` first (CI does); `cargo test --test speech_stt`.

#[path = "support/speech_audio.rs"]
mod speech_audio;
#[path = "common/voices.rs"]
mod voices;

use std::sync::Arc;
use std::time::Duration;

use callcenter::speech::SpeechError;
use callcenter::speech::stt::{SttConfig, SttPool, Transcript, normalize_words, word_error_rate};
use speech_audio::{cut, espeak_16k, jfk, model_paths};
use voices::{Channel, Voice, heard_at_16k, say, through_phone};

const JFK: &str =
    "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

fn pool(config: SttConfig) -> SttPool {
    SttPool::new(&model_paths().whisper("tiny.en"), config).expect("tiny.en loads (run `bash models/fetch.sh`)")
}

fn small_pool() -> SttPool {
    pool(SttConfig { workers: 1, threads_per_worker: 1, queue_depth: 4, ..SttConfig::default() })
}

fn normalised(text: &str) -> String {
    normalize_words(text).join(" ")
}

#[test]
fn jfk_is_transcribed() {
    let stt = small_pool();
    let transcript = stt.transcribe_blocking(jfk()).unwrap();
    let text = normalised(&transcript.text);
    assert!(text.contains("ask not what your country can do for you"), "{transcript:?}");
    assert!(word_error_rate(JFK, &transcript.text) <= 0.1, "{transcript:?}");
    assert!(transcript.confidence > 0.5 && transcript.confidence <= 1.0, "{transcript:?}");
    assert_eq!(transcript.segments.len(), 1, "one segment without timestamp tokens: {transcript:?}");
    let segment = &transcript.segments[0];
    assert_eq!(segment.start_ms, 0);
    assert!((10_500..=11_000).contains(&segment.end_ms), "segment ends with the 11 s clip: {segment:?}");
}

#[test]
fn timestamps_split_jfk_into_timed_segments() {
    let timed = SttConfig { workers: 1, segment_timestamps: true, shrink_audio_ctx: false, ..SttConfig::default() };
    let transcript = pool(timed.clone()).transcribe_blocking(jfk()).unwrap();
    assert!(normalised(&transcript.text).contains("ask not what your country can do for you"), "{transcript:?}");
    assert!(transcript.segments.len() >= 2, "{transcript:?}");
    for pair in transcript.segments.windows(2) {
        assert!(pair[0].start_ms < pair[0].end_ms && pair[0].end_ms <= pair[1].start_ms, "{transcript:?}");
    }
    // The segment with "ask not" ends after it (~4.3 s in), before the clip does.
    let ask_not = transcript.segments.iter().find(|s| normalised(&s.text).contains("ask not"));
    let ask_not = ask_not.unwrap_or_else(|| panic!("no segment with \"ask not\": {transcript:?}"));
    assert!((4_300..=10_000).contains(&ask_not.end_ms), "{transcript:?}");

    // Silence put in front changes nothing said, and times stay within the caller's clip.
    let lead_in = pool(SttConfig { lead_in: Duration::from_millis(500), ..timed }).transcribe_blocking(jfk()).unwrap();
    assert_eq!(normalised(&lead_in.text), normalised(&transcript.text));
    assert_eq!(lead_in.segments[0].start_ms, 0, "{lead_in:?}");
    assert!(lead_in.segments.iter().all(|s| s.start_ms < s.end_ms && s.end_ms <= 11_000), "{lead_in:?}");
}

#[test]
fn a_short_cut_is_transcribed_with_the_shrunk_context() {
    let stt = small_pool();
    assert!(stt.config().shrink_audio_ctx);
    // 3.1-4.6 s of jfk.wav: "ask not", and the pause after it.
    let transcript = stt.transcribe_blocking(cut(&jfk(), 3.1, 4.6)).unwrap();
    assert_eq!(normalised(&transcript.text), "ask not", "{transcript:?}");
    assert!(transcript.segments.iter().all(|s| s.end_ms <= 1_500), "{transcript:?}");
}

/// Digital silence and a quiet line (-60 dBFS hiss) give no text, not whisper's "you".
#[test]
fn silence_gives_empty_text() {
    let stt = small_pool();
    let empty = Transcript { text: String::new(), segments: vec![], confidence: 0.0 };
    for secs in [0.3, 2.0] {
        let transcript = stt.transcribe_blocking(vec![0.0; (secs * 16_000.0) as usize]).unwrap();
        assert_eq!(transcript, empty, "{secs} s of zeros");
    }
    // Deterministic white noise at ~-60 dBFS RMS (uniform in +-0.0017).
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let hiss: Vec<f32> = (0..32_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.0035
        })
        .collect();
    assert_eq!(stt.transcribe_blocking(hiss).unwrap(), empty, "hiss");
}

#[test]
fn bad_input_is_refused() {
    let stt = small_pool();
    assert!(matches!(stt.transcribe_blocking(vec![]), Err(SpeechError::InvalidInput(_))));
    let mut with_nan = cut(&jfk(), 0.0, 1.0);
    with_nan[100] = f32::NAN;
    assert!(matches!(stt.transcribe_blocking(with_nan), Err(SpeechError::InvalidInput(_))));
    let too_long = vec![0.0; 16_000 * 121];
    assert!(matches!(stt.transcribe_blocking(too_long), Err(SpeechError::InvalidInput(_))));
}

#[test]
fn a_missing_model_is_named() {
    let missing = model_paths().whisper("no-such-model");
    match SttPool::new(&missing, SttConfig::default()) {
        Err(SpeechError::MissingModel { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected MissingModel, got {other:?}"),
    }
    let zero_workers = SttConfig { workers: 0, ..SttConfig::default() };
    assert!(matches!(SttPool::new(&model_paths().whisper("tiny.en"), zero_workers), Err(SpeechError::InvalidInput(_))));
}

/// One worker and one queue place: of four clips submitted at once, the first two are admitted
/// (one runs, one waits) and the others are refused at once. Admission counts clips in the pool,
/// not what the worker thread has picked up, so this does not depend on thread timing (a
/// transcription of jfk.wav takes far longer than submitting four clips).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once() {
    let stt = Arc::new(pool(SttConfig { workers: 1, threads_per_worker: 2, queue_depth: 1, ..SttConfig::default() }));
    let audio = jfk();
    let results = futures::future::join_all((0..4).map(|_| stt.transcribe(audio.clone()))).await;
    let overloaded = results.iter().filter(|r| matches!(r, Err(SpeechError::Overloaded("stt")))).count();
    let done: Vec<&Transcript> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!((done.len(), overloaded), (2, 2), "{results:?}");
    for transcript in done {
        assert!(normalised(&transcript.text).contains("ask not what your country"), "{transcript:?}");
    }
    // Places are given back: the pool takes a clip again.
    assert_eq!(stt.in_pool(), 0);
    assert!(stt.transcribe(cut(&audio, 3.2, 4.7)).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_all_complete() {
    let stt = Arc::new(pool(SttConfig { workers: 2, threads_per_worker: 1, queue_depth: 6, ..SttConfig::default() }));
    let audio = jfk();
    let clips: Vec<(f64, f64)> = vec![(0.0, 2.5), (3.2, 4.7), (3.2, 6.0), (6.5, 11.0), (0.0, 11.0), (3.2, 4.7)];
    let tasks: Vec<_> = clips
        .iter()
        .map(|&(from, to)| {
            let (stt, clip) = (Arc::clone(&stt), cut(&audio, from, to));
            tokio::spawn(async move { stt.transcribe(clip).await })
        })
        .collect();
    for (task, (from, to)) in tasks.into_iter().zip(clips) {
        let transcript = task.await.unwrap().unwrap_or_else(|e| panic!("{from}-{to} s: {e}"));
        assert!(!transcript.text.is_empty(), "{from}-{to} s: {transcript:?}");
    }
    assert_eq!(stt.in_pool(), 0);
}

#[test]
fn a_dropped_request_gives_its_place_back() {
    let stt = pool(SttConfig { workers: 1, threads_per_worker: 2, queue_depth: 1, ..SttConfig::default() });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // Start a request and abandon it after it is admitted (a barge-in, a hang-up).
        let abandoned = tokio::time::timeout(Duration::from_millis(1), stt.transcribe(jfk())).await;
        assert!(abandoned.is_err(), "11 s of audio is not transcribed in 1 ms");
    });
    // The worker finishes or skips it and the place comes back.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stt.in_pool() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(stt.in_pool(), 0);
}

/// Synthetic callers: espeak-ng at 22.05 kHz, resampled to 16 kHz; the keywords come back.
#[test]
fn espeak_sentences_are_recognised() {
    let stt = small_pool();
    let dir = tempfile::tempdir().unwrap();
    let sentences: [(&str, &[&str]); 3] = [
        ("I would like to check my account balance.", &["check", "account", "balance"]),
        ("Please call me back tomorrow morning.", &["call", "back", "tomorrow", "morning"]),
        ("I want to cancel my subscription.", &["cancel", "subscription"]),
    ];
    for (sentence, keywords) in sentences {
        let transcript = stt.transcribe_blocking(espeak_16k(sentence, dir.path())).unwrap();
        let words = normalize_words(&transcript.text);
        for keyword in keywords {
            assert!(words.iter().any(|w| w == keyword), "{keyword:?} not in {transcript:?} for {sentence:?}");
        }
    }
}

/// The question a caller answers, as the gateway gives it to whisper.
const QUESTION: &str = "Hi, this is Alex from Acme. Is now a good time to talk?";

/// Words of `text` (longer than 3 letters) that are also words of `QUESTION`.
fn echoed_from_question(text: &str) -> Vec<String> {
    let asked = normalize_words(QUESTION);
    normalize_words(text).into_iter().filter(|w| w.len() > 3 && asked.contains(w)).collect()
}

/// Whisper is known to write its prompt out when the audio gives it nothing better: line hiss
/// and clicks above the silence gate must not come back as the question.
#[test]
fn a_prompt_is_not_written_out_when_there_is_nothing_to_hear() {
    let stt = small_pool();
    for (i, noise_dbfs) in [-45.0f32, -40.0, -35.0, -30.0].into_iter().enumerate() {
        let mut line = vec![0i16; 8_000 * (1 + i % 2)];
        if i % 2 == 1 {
            // A click: a loud pulse train decaying over 40 ms.
            for (n, s) in line[2_000..2_320].iter_mut().enumerate() {
                *s = if n % 40 == 0 { (12_000.0 * (-(n as f32) / 120.0).exp()) as i16 } else { 0 };
            }
        }
        let channel = Channel { level_dbfs: noise_dbfs + 20.0, snr_db: Some(20.0), loss: 0.01, seed: i as u64 };
        let audio = heard_at_16k(&through_phone(&line, &channel));
        let plain = stt.transcribe_blocking(audio.clone()).unwrap();
        let prompted = stt.transcribe_blocking_with_prompt(audio, Some(QUESTION.into())).unwrap();
        assert!(echoed_from_question(&prompted.text).is_empty(), "{noise_dbfs} dBFS: {prompted:?}");
        assert!(
            normalize_words(&prompted.text).len() <= normalize_words(&plain.text).len() + 1,
            "{noise_dbfs} dBFS: the prompt made up words: {plain:?} -> {prompted:?}"
        );
    }
}

#[test]
fn an_answer_heard_after_its_question_is_transcribed() {
    let stt = small_pool();
    let voice = Voice::flite("rms");
    for (said, expected) in [("Not right now, no.", "not right now"), ("Ring me back in an hour.", "back in an hour")] {
        let mut speech = vec![0i16; 1_600];
        speech.extend(say(&voice, said).unwrap());
        speech.resize(speech.len() + 2_400, 0);
        let audio = heard_at_16k(&through_phone(&speech, &Channel { seed: 3, ..Channel::clean() }));
        let heard = stt.transcribe_blocking_with_prompt(audio, Some(QUESTION.into())).unwrap();
        assert!(normalised(&heard.text).contains(expected), "{said:?} -> {heard:?}");
        assert!(echoed_from_question(&heard.text).is_empty(), "{said:?} -> {heard:?}");
    }
}

#[test]
fn an_empty_prompt_is_no_prompt_and_a_long_one_is_cut() {
    let stt = small_pool();
    let clip = cut(&jfk(), 3.2, 4.3);
    let plain = stt.transcribe_blocking(clip.clone()).unwrap();
    let blank = stt.transcribe_blocking_with_prompt(clip.clone(), Some("  ".into())).unwrap();
    // (The no-speech probability, unused without timestamps, varies from run to run.)
    assert_eq!((blank.text, blank.confidence), (plain.text, plain.confidence));
    // Far more than whisper's 224 prompt tokens: only its end is used. (What is heard then leans
    // on the prompt's words: with "Please answer the question." x 200 this clip came back as
    // "Ask the question.", which is why the gateway's prompt is the one question asked.)
    let long = "Please answer the question. ".repeat(200);
    let heard = stt.transcribe_blocking_with_prompt(clip.clone(), Some(long)).unwrap();
    assert!(normalised(&heard.text).starts_with("ask"), "{heard:?}");
    let nul = stt.transcribe_blocking_with_prompt(clip, Some("a\0b".into()));
    assert!(matches!(nul, Err(SpeechError::InvalidInput(_))), "{nul:?}");
}
