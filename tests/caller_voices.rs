//! The caller-voice library (`tests/common/voices.rs`) itself: every voice speaks, a pause is
//! where it was asked for, and the phone line is deterministic and at the level asked for.
//! Needs the `espeak-ng` and `flite` commands (`scripts/setup.sh`); no models.

#[path = "common/voices.rs"]
mod voices;

use std::time::Duration;

use callcenter::media::g711;
use voices::{Channel, RATE, Voice, heard_at_16k, say, say_parts, through_phone};

fn secs(samples: usize) -> f64 {
    samples as f64 / f64::from(RATE)
}

#[test]
fn every_standard_voice_speaks_and_they_are_distinct() {
    let all = voices::voices();
    assert!(all.len() >= 8);
    assert_eq!(all.iter().filter(|v| v.name.starts_with("flite")).count(), 4);
    let mut names: Vec<&str> = all.iter().map(|v| v.name.as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), all.len(), "voice names are unique");
    for voice in &all {
        let speech = say(voice, "Yes, sure, go ahead.").unwrap_or_else(|e| panic!("{}: {e:#}", voice.name));
        let length = secs(speech.len());
        assert!((0.6..4.0).contains(&length), "{}: {length:.2} s", voice.name);
        // Trimmed: the clip starts and ends on sound, not on the synthesizer's silence.
        assert!(speech[0].unsigned_abs() > 100 && speech[speech.len() - 1].unsigned_abs() > 100, "{}", voice.name);
    }
}

#[test]
fn a_pause_between_parts_is_silence_of_the_length_asked() {
    let voice = Voice::flite("slt");
    let first = say(&voice, "Yes, sure,").unwrap();
    let second = say(&voice, "go ahead.").unwrap();
    let pause = Duration::from_millis(700);
    let both = say_parts(&voice, &["Yes, sure,", "go ahead."], &[pause]).unwrap();
    assert_eq!(both.len(), first.len() + 5_600 + second.len());
    assert!(both[first.len()..first.len() + 5_600].iter().all(|&s| s == 0));
    assert!(say_parts(&voice, &["one", "two"], &[]).is_err(), "a pause per gap is required");
}

#[test]
fn a_missing_or_failing_synthesizer_is_named_in_the_error() {
    let program = "callcenter-no-such-synthesizer";
    let error = format!("{:#}", voices::run(program, &mut std::process::Command::new(program)).unwrap_err());
    assert!(error.contains(program) && error.contains("scripts/setup.sh"), "{error}");
    let unknown = Voice {
        name: "nobody".into(),
        engine: voices::Engine::Espeak { voice: "xx-nowhere".into(), speed: 175, pitch: 50 },
    };
    let error = format!("{:#}", say(&unknown, "hello").unwrap_err());
    assert!(error.contains("nobody"), "{error}");
}

#[test]
fn the_line_is_deterministic_and_at_the_level_asked() {
    let speech = say(&Voice::espeak("en-us", 165, 50), "Ring me back in an hour.").unwrap();
    let channel = Channel::random(7);
    assert!((-35.0..=-15.0).contains(&channel.level_dbfs));
    assert!(channel.snr_db.is_some_and(|snr| (15.0..=25.0).contains(&snr)));
    assert!((0.01..=0.02).contains(&channel.loss));
    assert_eq!(through_phone(&speech, &channel), through_phone(&speech, &channel));
    assert_ne!(through_phone(&speech, &channel), through_phone(&speech, &Channel::random(8)));

    for level in [-35.0f32, -15.0] {
        let line = through_phone(&speech, &Channel { level_dbfs: level, ..Channel::clean() });
        let mut decoded = vec![0i16; line.len()];
        g711::decode_ulaw(&line, &mut decoded);
        let peak = decoded.iter().map(|s| s.unsigned_abs()).max().unwrap();
        let peak_dbfs = 20.0 * (f32::from(peak) / 32768.0).log10();
        // Speech peaks 10-20 dB over its active level: a loud caller reaches full scale (as on
        // a real line), a quiet one stays far below it.
        assert!(peak_dbfs > level + 8.0 && peak_dbfs < level + 25.0, "{level} dBFS: peak {peak_dbfs:.1}");
    }
}

#[test]
fn lost_packets_are_silent_20_ms_frames() {
    let speech = say(&Voice::flite("kal"), "Thank you for your time. Goodbye.").unwrap();
    let lossy = Channel { loss: 0.2, seed: 3, ..Channel::clean() };
    let line = through_phone(&speech, &lossy);
    let frames = line.chunks(160).count();
    let lost = line.chunks(160).filter(|f| f.iter().all(|&b| b == 0xFF)).count();
    assert!(lost > frames / 10 && lost < frames * 3 / 10, "{lost} of {frames} frames lost at 20 %");
    assert_eq!(heard_at_16k(&line).len(), line.len() * 2);
}
