//! Test audio for the speech suites and benches: jfk.wav and espeak-ng speech as 16 kHz mono
//! f32. Shared through `#[path]` by `tests/speech_stt.rs` and `benches/stt.rs`.

#![allow(dead_code)] // each includer uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

use callcenter::media::decode::{decode_file, resample_clip};
use callcenter::speech::ModelPaths;

/// `$CALLCENTER_MODELS_DIR`, else this crate's `models/`.
pub fn model_paths() -> ModelPaths {
    match std::env::var_os("CALLCENTER_MODELS_DIR") {
        Some(dir) if !dir.is_empty() => ModelPaths::new(dir),
        _ => ModelPaths::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("models")),
    }
}

/// A WAV or MP3 file as 16 kHz mono, through `media::decode`.
pub fn load_16k(path: &Path) -> Vec<f32> {
    let audio = decode_file(path).unwrap_or_else(|e| panic!("{}: {e} (run `bash models/fetch.sh`)", path.display()));
    resample_clip(&audio.samples, audio.sample_rate, 16_000).expect("resampling to 16 kHz")
}

/// jfk.wav, 16 kHz mono, 11 s: "And so my fellow Americans, ask not what your country can do
/// for you, ask what you can do for your country."
pub fn jfk() -> Vec<f32> {
    load_16k(&model_paths().fixture("jfk.wav"))
}

/// `text` spoken by espeak-ng (en-us, 22.05 kHz), resampled to 16 kHz.
pub fn espeak_16k(text: &str, dir: &Path) -> Vec<f32> {
    let wav: PathBuf = dir.join(format!("espeak-{:x}.wav", fnv1a(text)));
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng is installed (scripts/setup installs it)");
    assert!(status.success(), "espeak-ng failed for {text:?}");
    load_16k(&wav)
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

/// A slice of a 16 kHz clip, in seconds.
pub fn cut(samples: &[f32], from_secs: f64, to_secs: f64) -> Vec<f32> {
    let at = |secs: f64| ((secs * 16_000.0) as usize).min(samples.len());
    samples[at(from_secs)..at(to_secs)].to_vec()
}
