//! Test audio for the speech suites and benches: jfk.wav and espeak-ng speech as 16 kHz mono
//! f32. Shared through `#[path]` by `tests/speech_stt.rs` and `benches/stt.rs`.

#![allow(dead_code)] // each includer uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

use callcenter::media::resample::StreamResampler;
use callcenter::speech::ModelPaths;

/// `$CALLCENTER_MODELS_DIR`, else this crate's `models/`.
pub fn model_paths() -> ModelPaths {
    match std::env::var_os("CALLCENTER_MODELS_DIR") {
        Some(dir) if !dir.is_empty() => ModelPaths::new(dir),
        _ => ModelPaths::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("models")),
    }
}

/// Mono PCM16 samples and rate of a canonical WAV file (RIFF, `fmt ` PCM, 16-bit, mono).
/// Until `media::decode` lands this is the tests' own minimal reader; it refuses anything else.
pub fn read_pcm16_mono_wav(path: &Path) -> (u32, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e} (run `bash models/fetch.sh`)", path.display()));
    assert!(
        bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
        "{} is not RIFF/WAVE",
        path.display()
    );
    let (mut pos, mut rate, mut data) = (12usize, None, None);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &bytes[pos + 8..(pos + 8).saturating_add(len).min(bytes.len())];
        match id {
            b"fmt " => {
                let format = u16::from_le_bytes([body[0], body[1]]);
                let channels = u16::from_le_bytes([body[2], body[3]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                assert_eq!((format, channels, bits), (1, 1, 16), "{}: want PCM mono 16-bit", path.display());
                rate = Some(u32::from_le_bytes(body[4..8].try_into().unwrap()));
            }
            // espeak-ng writing to a file may leave a streaming size; the body is cut at EOF.
            b"data" => data = Some(body),
            _ => {}
        }
        pos = pos.saturating_add(8 + len + (len & 1));
    }
    let (rate, data) = (rate.expect("fmt chunk"), data.expect("data chunk"));
    let samples = data.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect();
    (rate, samples)
}

/// jfk.wav, 16 kHz mono, 11 s: "And so my fellow Americans, ask not what your country can do
/// for you, ask what you can do for your country."
pub fn jfk() -> Vec<f32> {
    let (rate, samples) = read_pcm16_mono_wav(&model_paths().fixture("jfk.wav"));
    assert_eq!(rate, 16_000);
    samples
}

/// A whole clip through the streaming resampler, 20 ms at a time, without its warm-up delay.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    let mut resampler = StreamResampler::new(from, to).expect("supported rates");
    let (in_len, out_len) = (resampler.input_len(), resampler.output_len());
    let delay = resampler.latency();
    let mut input = samples.to_vec();
    // Zeros to push the last samples out past the filter delay, then whole frames.
    let want = samples.len() * to as usize / from as usize;
    input.resize(input.len() + delay * from as usize / to as usize + in_len, 0.0);
    input.resize(input.len().div_ceil(in_len) * in_len, 0.0);
    let mut out = vec![0.0; input.len() / in_len * out_len];
    for (frame_in, frame_out) in input.chunks_exact(in_len).zip(out.chunks_exact_mut(out_len)) {
        resampler.process_f32(frame_in, frame_out).expect("frame sizes");
    }
    out.drain(..delay);
    out.truncate(want);
    out
}

/// `text` spoken by espeak-ng (en-us, 22.05 kHz), resampled to 16 kHz.
pub fn espeak_16k(text: &str, dir: &Path) -> Vec<f32> {
    let wav: PathBuf = dir.join(format!("espeak-{:x}.wav", fxhash(text)));
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng is installed (scripts/setup installs it)");
    assert!(status.success(), "espeak-ng failed for {text:?}");
    let (rate, samples) = read_pcm16_mono_wav(&wav);
    resample(&samples, rate, 16_000)
}

fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

/// A slice of a 16 kHz clip, in seconds.
pub fn cut(samples: &[f32], from_secs: f64, to_secs: f64) -> Vec<f32> {
    let at = |secs: f64| ((secs * 16_000.0) as usize).min(samples.len());
    samples[at(from_secs)..at(to_secs)].to_vec()
}
