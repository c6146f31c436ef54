//! Decoding whole audio files (WAV or MP3 prompts a user uploads, test recordings, the input
//! of `callcenter transcribe`) into mono f32 samples, and one-shot resampling of such clips.
//!
//! This is the file path, not the call path: a clip is decoded completely and may allocate
//! freely. Every malformed input (not audio, a truncated header or data chunk, an unsupported
//! codec, a clip longer than `MAX_DURATION_SECS`) is a `DecodeError`, never a panic.

use std::fs::File;
use std::io::Cursor;
use std::path::Path;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

/// Longest clip accepted: an hour, a bound on the memory one upload or CLI input can take
/// (an hour of 48 kHz mono f32 is 690 MB).
pub const MAX_DURATION_SECS: u64 = 3600;

/// A decoded clip, mixed down to mono, full scale ±1.0.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedAudio {
    pub sample_rate: u32,
    /// Channels in the source (the samples are their average).
    pub channels: u16,
    pub samples: Vec<f32>,
}

impl DecodedAudio {
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("not a recognised audio file (supported: WAV, MP3)")]
    UnknownFormat,
    #[error("the file has no audio track")]
    NoAudioTrack,
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    #[error("malformed audio: {0}")]
    Malformed(String),
    #[error("the audio ends early: {0}")]
    Truncated(String),
    #[error("the file holds no samples")]
    Empty,
    #[error("audio longer than {MAX_DURATION_SECS} s")]
    TooLong,
    #[error("cannot resample {from} Hz to {to} Hz: {reason}")]
    Resample { from: u32, to: u32, reason: String },
}

/// Decodes a WAV or MP3 file.
pub fn decode_file(path: &Path) -> Result<DecodedAudio, DecodeError> {
    let file = File::open(path).map_err(|source| DecodeError::Io { path: path.display().to_string(), source })?;
    let extension = path.extension().and_then(|e| e.to_str());
    decode_source(Box::new(file), extension)
}

/// Decodes a WAV or MP3 held in memory; `extension_hint` (e.g. "wav", "mp3") only speeds up
/// format detection, the content decides.
pub fn decode_bytes(bytes: Vec<u8>, extension_hint: Option<&str>) -> Result<DecodedAudio, DecodeError> {
    decode_source(Box::new(Cursor::new(bytes)), extension_hint)
}

/// symphonia parses untrusted bytes and can panic on some (0.6.1 overflows a u16 on a WAV fmt
/// chunk declaring 65535 channels; found by tests/decoder_robustness.rs). Its state is all local
/// to this call, so a panic is turned into `Malformed` instead of taking the caller down.
fn decode_source(source: Box<dyn MediaSource>, extension_hint: Option<&str>) -> Result<DecodedAudio, DecodeError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_source_unguarded(source, extension_hint)))
        .unwrap_or_else(|_| Err(DecodeError::Malformed("the decoder failed on this input".into())))
}

fn decode_source_unguarded(
    source: Box<dyn MediaSource>,
    extension_hint: Option<&str>,
) -> Result<DecodedAudio, DecodeError> {
    let stream = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = extension_hint {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(&hint, stream, FormatOptions::default(), MetadataOptions::default())
        .map_err(|e| match e {
            SymphoniaError::Unsupported(_) => DecodeError::UnknownFormat,
            other => classify(other),
        })?;
    let track = format.default_track(TrackType::Audio).ok_or(DecodeError::NoAudioTrack)?;
    let track_id = track.id;
    let params = track.codec_params.as_ref().and_then(|p| p.audio()).ok_or(DecodeError::NoAudioTrack)?.clone();
    // A declared length lets a truncated data chunk be told from a complete one.
    let declared_frames = track.num_frames;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| DecodeError::Unsupported(e.to_string()))?;

    let mut samples = Vec::new();
    let mut interleaved: Vec<f32> = Vec::new();
    let mut sample_rate = params.sample_rate.unwrap_or(0);
    let mut channels = params.channels.as_ref().map_or(0, |c| c.count());
    let mut frames_decoded: u64 = 0;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                // MP3 has no declared length, so its stream simply ends; a WAV whose data chunk
                // is shorter than its header says is caught below.
                break;
            }
            Err(e) => return Err(classify(e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            // A corrupt MP3 frame is skipped, as every player does; the rest still decodes.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(classify(e)),
        };
        let spec = buffer.spec();
        sample_rate = spec.rate();
        channels = spec.channels().count();
        if channels == 0 || sample_rate == 0 {
            return Err(DecodeError::Malformed("zero channels or sample rate".into()));
        }
        interleaved.resize(buffer.samples_interleaved(), 0.0);
        buffer.copy_to_slice_interleaved(&mut interleaved);
        let frames = interleaved.len() / channels;
        frames_decoded += frames as u64;
        if frames_decoded > MAX_DURATION_SECS * u64::from(sample_rate) {
            return Err(DecodeError::TooLong);
        }
        samples.extend(interleaved.chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32));
    }
    if let Some(declared) = declared_frames
        && frames_decoded < declared
    {
        return Err(DecodeError::Truncated(format!("{frames_decoded} of {declared} frames present")));
    }
    if samples.is_empty() {
        return Err(DecodeError::Empty);
    }
    let channels = u16::try_from(channels).map_err(|_| DecodeError::Unsupported(format!("{channels} channels")))?;
    Ok(DecodedAudio { sample_rate, channels, samples })
}

fn classify(error: SymphoniaError) -> DecodeError {
    match error {
        SymphoniaError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Truncated(e.to_string())
        }
        SymphoniaError::IoError(e) => DecodeError::Malformed(e.to_string()),
        SymphoniaError::Unsupported(what) => DecodeError::Unsupported(what.to_string()),
        other => DecodeError::Malformed(other.to_string()),
    }
}

/// `resample_clip` for PCM16: through f32 and back, rounded and clipped.
pub fn resample_i16(samples: &[i16], from_hz: u32, to_hz: u32) -> Result<Vec<i16>, DecodeError> {
    let mut floats = vec![0.0f32; samples.len()];
    crate::media::pcm::i16_to_f32(samples, &mut floats);
    let resampled = resample_clip(&floats, from_hz, to_hz)?;
    let mut out = vec![0i16; resampled.len()];
    crate::media::pcm::f32_to_i16(&resampled, &mut out);
    Ok(out)
}

/// Resamples a whole clip between any two rates (rubato's FFT resampler; the filter's delay is
/// removed, so the output is aligned with the input to within half an output sample and is
/// `len * to / from` long, rounded up).
pub fn resample_clip(samples: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>, DecodeError> {
    let error = |reason: String| DecodeError::Resample { from: from_hz, to: to_hz, reason };
    if from_hz == 0 || to_hz == 0 {
        return Err(error("a rate of 0 Hz".into()));
    }
    if from_hz == to_hz || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    // 20 ms chunks for 50 Hz multiples; rubato rounds other rates to its FFT block.
    let chunk = (from_hz as usize / 50).max(64);
    let mut fft = Fft::<f32>::new(from_hz as usize, to_hz as usize, chunk, 1, FixedSync::Input)
        .map_err(|e| error(e.to_string()))?;
    let mut output = vec![0.0; fft.process_all_needed_output_len(samples.len())];
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| error(e.to_string()))?;
    let out_len = output.len();
    let mut output_adapter = InterleavedSlice::new_mut(&mut output, 1, out_len).map_err(|e| error(e.to_string()))?;
    let (_, produced) = fft
        .process_all_into_buffer(&input, &mut output_adapter, samples.len(), None)
        .map_err(|e| error(e.to_string()))?;
    output.truncate(produced);
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    /// A canonical 44-byte-header PCM16 WAV.
    fn wav_bytes(rate: u32, channels: u16, frames: &[Vec<i16>]) -> Vec<u8> {
        let data_len = (frames.len() * channels as usize * 2) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * channels as u32 * 2).to_le_bytes());
        out.extend_from_slice(&(channels * 2).to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        for frame in frames {
            for s in frame {
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
        out
    }

    fn tone(freq: f32, rate: u32, len: usize, amp: f32) -> Vec<f32> {
        (0..len).map(|n| amp * (2.0 * PI * freq * n as f32 / rate as f32).sin()).collect()
    }

    #[test]
    fn decodes_stereo_wav_to_the_mono_average() {
        let frames: Vec<Vec<i16>> = (0..800).map(|n| vec![(n * 10) as i16, -(n as i16) * 2]).collect();
        let audio = decode_bytes(wav_bytes(8000, 2, &frames), Some("wav")).unwrap();
        assert_eq!((audio.sample_rate, audio.channels, audio.samples.len()), (8000, 2, 800));
        for (n, &s) in audio.samples.iter().enumerate() {
            let expected = ((n * 10) as f32 / 32768.0 + (-(n as i16) * 2) as f32 / 32768.0) / 2.0;
            assert!((s - expected).abs() < 1e-6, "sample {n}: {s} vs {expected}");
        }
        assert!((audio.duration_secs() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn the_jfk_fixture_decodes() {
        // `make test` runs models/fetch.sh first; a missing fixture is a failure, not a skip.
        let path = crate::speech::ModelPaths::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models")).fixture("jfk.wav");
        let audio = decode_file(&path).unwrap_or_else(|e| panic!("{}: {e} (run bash models/fetch.sh)", path.display()));
        assert_eq!((audio.sample_rate, audio.channels), (16000, 1));
        assert!((audio.duration_secs() - 11.0).abs() < 0.1, "{}", audio.duration_secs());
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let good = wav_bytes(16000, 1, &vec![vec![1000i16]; 1600]);
        assert!(matches!(decode_bytes(Vec::new(), None), Err(DecodeError::UnknownFormat)));
        assert!(matches!(decode_bytes(b"hello, not audio at all".to_vec(), None), Err(DecodeError::UnknownFormat)));
        // Cut inside the header, and inside the data chunk.
        for cut in [4, 12, 20, 30, 40, 44, 100, good.len() - 1] {
            let result = decode_bytes(good[..cut].to_vec(), Some("wav"));
            assert!(result.is_err(), "cut at {cut} decoded: {:?}", result.map(|a| a.samples.len()));
        }
        // A header with no samples.
        assert!(decode_bytes(wav_bytes(16000, 1, &[]), Some("wav")).is_err());
        assert!(matches!(decode_file(Path::new("/nonexistent/x.wav")), Err(DecodeError::Io { .. })));
    }

    /// Amplitude and delay (in samples, positive = late) of a `freq` sine in `signal`, fitted by
    /// a single-bin DFT over the middle half (away from the filter's edges).
    fn fit_sine(signal: &[f32], freq: f64, rate: u32) -> (f64, f64) {
        let middle = signal.len() / 4..signal.len() * 3 / 4;
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for n in middle.clone() {
            let phase = 2.0 * std::f64::consts::PI * freq * n as f64 / rate as f64;
            re += signal[n] as f64 * phase.cos();
            im += signal[n] as f64 * phase.sin();
        }
        let amplitude = 2.0 * re.hypot(im) / middle.len() as f64;
        let delay = -re.atan2(im) / (2.0 * std::f64::consts::PI * freq / rate as f64);
        (amplitude, delay)
    }

    #[test]
    fn resample_clip_keeps_length_frequency_and_alignment() {
        for (from, to) in [(44100, 16000), (22050, 16000), (16000, 8000), (8000, 16000), (48000, 22050)] {
            let input = tone(440.0, from, from as usize, 0.5);
            let output = resample_clip(&input, from, to).unwrap();
            let expected_len = (input.len() as u64 * to as u64).div_ceil(from as u64) as usize;
            assert!(output.len().abs_diff(expected_len) <= 1, "{from}->{to}: {} vs {expected_len}", output.len());
            // Measured with rubato 5.1: amplitude exact to 1e-4; the delay left is rubato's
            // rounding of its filter delay to whole samples (0, 0.18, 0.36 or 0.5 of a sample).
            let (amplitude, delay) = fit_sine(&output, 440.0, to);
            assert!((amplitude - 0.5).abs() < 0.005, "{from}->{to}: amplitude {amplitude}");
            assert!(delay.abs() <= 0.51, "{from}->{to}: delay {delay} samples");
        }
        assert_eq!(resample_clip(&[0.25, 0.5], 8000, 8000).unwrap(), vec![0.25, 0.5]);
        assert!(resample_clip(&[0.0; 10], 0, 8000).is_err());
    }
}
