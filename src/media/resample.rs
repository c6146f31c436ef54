//! Streaming sample-rate conversion between the rates the media path meets: 8 kHz (G.711),
//! 16 kHz (Silero VAD, whisper), 22.05 kHz (Piper voices), 24 kHz and 48 kHz (Opus, prompts).
//!
//! One `StreamResampler` per call and direction takes exactly one 20 ms frame at the input rate
//! and writes exactly one 20 ms frame at the output rate. All buffers are sized in `new()`;
//! `process_f32`/`process_i16` never allocate.
//!
//! Resampler choice: rubato's synchronous FFT resampler (`Fft` with `FixedSync::Both`). Our
//! ratios are fixed for the life of a call, so the asynchronous (sinc/polynomial) resamplers'
//! ability to drift the ratio is unused cost. Every supported pair has a rate GCD of at least
//! 50 Hz, so a 20 ms frame is a whole number of FFT blocks on both sides: one block per frame,
//! fixed sizes in and out, no internal queueing. The price is a delay of half a block, 10 ms,
//! which `latency()` reports in output samples: the first `latency()` samples of a stream are the
//! filter's warm-up, and every input sample appears that many output samples later.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::media::pcm::{f32_to_i16, i16_to_f32};

pub const SUPPORTED_RATES: [u32; 5] = [8000, 16000, 22050, 24000, 48000];

/// Samples in one 20 ms frame at `rate` (all supported rates are multiples of 50 Hz).
pub const fn frame_len(rate: u32) -> usize {
    rate as usize / 50
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResampleError {
    #[error("unsupported sample rate {0} Hz (supported: 8000, 16000, 22050, 24000, 48000)")]
    UnsupportedRate(u32),
    #[error("input frame has {actual} samples, expected {expected} (20 ms)")]
    InputLength { expected: usize, actual: usize },
    #[error("output buffer has {actual} samples, expected {expected} (20 ms)")]
    OutputLength { expected: usize, actual: usize },
    /// rubato refused a configuration or buffer that the checks above let through; kept as an
    /// error rather than a panic so a call's media task can end cleanly.
    #[error("resampler: {0}")]
    Internal(String),
}

pub struct StreamResampler {
    input_rate: u32,
    output_rate: u32,
    /// `None` when the rates are equal: a copy, with no delay and no filtering.
    fft: Option<Fft<f32>>,
    /// f32 scratch for the i16 entry point, one frame each side.
    input: Vec<f32>,
    output: Vec<f32>,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("input_rate", &self.input_rate)
            .field("output_rate", &self.output_rate)
            .field("latency", &self.latency())
            .finish()
    }
}

impl StreamResampler {
    pub fn new(input_rate: u32, output_rate: u32) -> Result<Self, ResampleError> {
        for rate in [input_rate, output_rate] {
            if !SUPPORTED_RATES.contains(&rate) {
                return Err(ResampleError::UnsupportedRate(rate));
            }
        }
        let fft = if input_rate == output_rate {
            None
        } else {
            let fft =
                Fft::<f32>::new(input_rate as usize, output_rate as usize, frame_len(input_rate), 1, FixedSync::Both)
                    .map_err(|e| ResampleError::Internal(e.to_string()))?;
            // The module's contract is one 20 ms frame each side; a rubato that rounded the
            // chunk differently would break every caller's framing, so refuse it here.
            if fft.input_frames_next() != frame_len(input_rate) || fft.output_frames_next() != frame_len(output_rate) {
                return Err(ResampleError::Internal(format!(
                    "chunk sizes {}/{} are not 20 ms",
                    fft.input_frames_next(),
                    fft.output_frames_next()
                )));
            }
            Some(fft)
        };
        Ok(Self {
            input_rate,
            output_rate,
            fft,
            input: vec![0.0; frame_len(input_rate)],
            output: vec![0.0; frame_len(output_rate)],
        })
    }

    pub fn input_rate(&self) -> u32 {
        self.input_rate
    }

    pub fn output_rate(&self) -> u32 {
        self.output_rate
    }

    /// Samples per input frame (20 ms at the input rate).
    pub fn input_len(&self) -> usize {
        self.input.len()
    }

    /// Samples per output frame (20 ms at the output rate).
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Delay through the resampler, in output samples (10 ms, or 0 for equal rates).
    pub fn latency(&self) -> usize {
        self.fft.as_ref().map_or(0, |f| f.output_delay())
    }

    /// Forgets the stream so far (the next frame starts with the warm-up again), so one
    /// resampler can be reused for a new call.
    pub fn reset(&mut self) {
        if let Some(fft) = &mut self.fft {
            fft.reset();
        }
    }

    /// Resamples one 20 ms frame of f32 audio (full scale ±1.0).
    pub fn process_f32(&mut self, input: &[f32], output: &mut [f32]) -> Result<(), ResampleError> {
        self.check_lengths(input.len(), output.len())?;
        let Some(fft) = &mut self.fft else {
            output.copy_from_slice(input);
            return Ok(());
        };
        let (in_len, out_len) = (input.len(), output.len());
        let internal = |e: &dyn std::fmt::Display| ResampleError::Internal(e.to_string());
        let buf_in = InterleavedSlice::new(input, 1, in_len).map_err(|e| internal(&e))?;
        let mut buf_out = InterleavedSlice::new_mut(output, 1, out_len).map_err(|e| internal(&e))?;
        fft.process_into_buffer(&buf_in, &mut buf_out, None).map_err(|e| internal(&e))?;
        Ok(())
    }

    /// Resamples one 20 ms frame of PCM16, through f32 scratch sized in `new()`; the output
    /// is rounded and clipped to the i16 range.
    pub fn process_i16(&mut self, input: &[i16], output: &mut [i16]) -> Result<(), ResampleError> {
        self.check_lengths(input.len(), output.len())?;
        i16_to_f32(input, &mut self.input);
        // Taken out for the call so `process_f32` can borrow `self` mutably; swapping Vecs
        // moves pointers only, nothing is allocated.
        let (frame_in, mut frame_out) = (std::mem::take(&mut self.input), std::mem::take(&mut self.output));
        let result = self.process_f32(&frame_in, &mut frame_out);
        f32_to_i16(&frame_out, output);
        (self.input, self.output) = (frame_in, frame_out);
        result
    }

    /// Resamples a whole clip of PCM16 to f32 at the output rate, reusing this resampler (it is
    /// reset first, so its stream state is lost): the filter's delay is removed, so the result
    /// is aligned with the input and `len * out / in` samples long. For a call's turns, which
    /// are transcribed one clip at a time, without building a new FFT for each.
    pub fn clip_to_f32(&mut self, clip: &[i16]) -> Result<Vec<f32>, ResampleError> {
        self.reset();
        let (n_in, n_out) = (self.input_len(), self.output_len());
        let wanted = clip.len() * n_out / n_in;
        let delay = self.latency();
        let mut out = Vec::with_capacity(wanted + delay + n_out);
        let mut frame_out = vec![0.0f32; n_out];
        let mut frame_in = vec![0.0f32; n_in];
        // The clip, then silence until the delayed tail has come out.
        let frames = clip.len().div_ceil(n_in) + delay.div_ceil(n_out);
        for i in 0..frames {
            let chunk = clip.get(i * n_in..).unwrap_or_default();
            let chunk = &chunk[..chunk.len().min(n_in)];
            frame_in.fill(0.0);
            i16_to_f32(chunk, &mut frame_in[..chunk.len()]);
            self.process_f32(&frame_in, &mut frame_out)?;
            out.extend_from_slice(&frame_out);
        }
        out.drain(..delay.min(out.len()));
        out.truncate(wanted);
        Ok(out)
    }

    fn check_lengths(&self, input: usize, output: usize) -> Result<(), ResampleError> {
        let (expected_in, expected_out) = (frame_len(self.input_rate), frame_len(self.output_rate));
        if input != expected_in {
            return Err(ResampleError::InputLength { expected: expected_in, actual: input });
        }
        if output != expected_out {
            return Err(ResampleError::OutputLength { expected: expected_out, actual: output });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clip_is_resampled_aligned_and_whole_by_a_reused_resampler() {
        let mut up = StreamResampler::new(8000, 16000).unwrap();
        // A 200 Hz tone, 0.25 s (not a whole number of frames).
        let clip: Vec<i16> = (0..2000)
            .map(|i| ((i as f32 * 2.0 * std::f32::consts::PI * 200.0 / 8000.0).sin() * 16000.0) as i16)
            .collect();
        for _ in 0..2 {
            let out = up.clip_to_f32(&clip).unwrap();
            assert_eq!(out.len(), 4000);
            // Aligned: sample 2k of the output is sample k of the input, away from the edges.
            for k in (200..1800).step_by(97) {
                let expected = f32::from(clip[k]) / 32768.0;
                assert!((out[2 * k] - expected).abs() < 0.02, "sample {k}: {} vs {expected}", out[2 * k]);
            }
        }
    }
    use std::f64::consts::PI;

    fn sine(freq: f64, rate: u32, amp: f64, len: usize) -> Vec<f32> {
        delayed_sine(freq, rate, amp, len, 0.0)
    }

    /// The sine as it should leave a resampler whose delay is `delay` output samples.
    fn delayed_sine(freq: f64, rate: u32, amp: f64, len: usize, delay: f64) -> Vec<f32> {
        (0..len).map(|n| (amp * (2.0 * PI * freq * (n as f64 - delay) / rate as f64).sin()) as f32).collect()
    }

    /// Resamples `input` frame by frame through a fresh resampler; returns it and the output.
    fn stream(from: u32, to: u32, input: &[f32]) -> (StreamResampler, Vec<f32>) {
        let mut r = StreamResampler::new(from, to).unwrap();
        let mut out = Vec::new();
        let mut frame = vec![0.0; r.output_len()];
        for chunk in input.chunks(r.input_len()) {
            r.process_f32(chunk, &mut frame).unwrap();
            out.extend_from_slice(&frame);
        }
        (r, out)
    }

    /// Amplitude of the component at `freq` (single-bin DFT; exact when the window holds a
    /// whole number of its periods).
    fn amplitude_at(signal: &[f32], freq: f64, rate: u32) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (n, &s) in signal.iter().enumerate() {
            let phase = 2.0 * PI * freq * n as f64 / rate as f64;
            re += s as f64 * phase.cos();
            im -= s as f64 * phase.sin();
        }
        2.0 * (re * re + im * im).sqrt() / signal.len() as f64
    }

    fn rms(signal: &[f32]) -> f64 {
        (signal.iter().map(|&s| s as f64 * s as f64).sum::<f64>() / signal.len() as f64).sqrt()
    }

    #[test]
    fn every_supported_pair_is_20ms_each_side() {
        for from in SUPPORTED_RATES {
            for to in SUPPORTED_RATES {
                let r = StreamResampler::new(from, to).unwrap();
                assert_eq!((r.input_len(), r.output_len()), (frame_len(from), frame_len(to)));
                let latency = if from == to { 0 } else { frame_len(to) / 2 };
                assert_eq!(r.latency(), latency, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn unsupported_rates_and_wrong_lengths_are_errors() {
        assert_eq!(StreamResampler::new(44100, 16000).unwrap_err(), ResampleError::UnsupportedRate(44100));
        assert_eq!(StreamResampler::new(8000, 0).unwrap_err(), ResampleError::UnsupportedRate(0));
        let mut r = StreamResampler::new(8000, 16000).unwrap();
        let mut out = [0i16; 320];
        assert_eq!(
            r.process_i16(&[0; 159], &mut out).unwrap_err(),
            ResampleError::InputLength { expected: 160, actual: 159 }
        );
        assert_eq!(r.process_i16(&[], &mut out).unwrap_err(), ResampleError::InputLength { expected: 160, actual: 0 });
        assert_eq!(
            r.process_f32(&[0.0; 160], &mut [0.0; 321]).unwrap_err(),
            ResampleError::OutputLength { expected: 320, actual: 321 }
        );
        // Still usable after a rejected frame.
        r.process_i16(&[0; 160], &mut out).unwrap();
    }

    #[test]
    fn upsampling_keeps_a_1khz_tone() {
        let input = sine(1000.0, 8000, 0.5, 8000);
        let (r, out) = stream(8000, 16000, &input);
        assert_eq!(out.len(), 16000);
        // Skip the warm-up; 1600 samples at 16 kHz hold exactly 100 periods (10 Hz bins).
        let window = &out[r.latency() + 320..r.latency() + 320 + 1600];
        let tone = amplitude_at(window, 1000.0, 16000);
        assert!((tone - 0.5).abs() < 0.005, "1 kHz amplitude {tone}");
        for neighbour in [800.0, 900.0, 1100.0, 1200.0, 3000.0, 7000.0] {
            let a = amplitude_at(window, neighbour, 16000);
            assert!(a < tone / 1000.0, "{neighbour} Hz: {a} vs 1 kHz {tone}");
        }
        // 100 periods = 200 sign changes (±1 for where the window starts).
        let crossings = window.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        assert!((199..=201).contains(&crossings), "{crossings} zero crossings");
    }

    #[test]
    fn downsampling_rejects_tones_above_the_output_nyquist() {
        // Gain in dB of a 0.5-amplitude tone through 16 kHz -> 8 kHz, warm-up skipped.
        let gain_db = |freq: f64| {
            let (r, out) = stream(16000, 8000, &sine(freq, 16000, 0.5, 16000));
            20.0 * (rms(&out[r.latency() + 160..]) / (0.5 / 2f64.sqrt())).log10()
        };
        // The telephone band (300-3400 Hz) is untouched.
        for freq in [300.0, 1000.0, 3400.0] {
            let g = gain_db(freq);
            assert!(g.abs() < 0.1, "{freq} Hz passband gain {g} dB");
        }
        // 6 kHz would alias to 2 kHz. Measured with rubato 5.1 (f32): 153 dB at 6 kHz (an exact
        // FFT bin), 143 dB at 6010 Hz, >= 142 dB anywhere from 4.2 to 7.9 kHz; the bound leaves
        // room for another FFT backend's rounding.
        for freq in [4500.0, 6000.0, 6010.0, 7900.0] {
            let g = gain_db(freq);
            assert!(g <= -120.0, "{freq} Hz attenuated by only {} dB", -g);
        }
    }

    #[test]
    fn one_second_at_22050_becomes_one_second_at_8000() {
        let input = sine(440.0, 22050, 0.5, 22050);
        let (r, out) = stream(22050, 8000, &input);
        // 50 frames of 441 in, 50 of 160 out; the first `latency` are warm-up, so the signal
        // proper is 8000 - latency samples (the rest still sits in the filter).
        assert_eq!(out.len(), 8000);
        assert_eq!(r.latency(), 80);
        // The filter's centre is 220 of the 441-sample input block, 220·160/441 ≈ 79.82 output
        // samples, which `latency()` rounds to 80: the ideal comparison needs the exact delay.
        let expected = delayed_sine(440.0, 8000, 0.5, out.len(), 220.0 * 160.0 / 441.0);
        let max_err = out.iter().zip(&expected).skip(2 * r.latency()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(max_err < 0.01, "max error vs the ideal 440 Hz sine: {max_err}");
    }

    #[test]
    fn streamed_frames_join_without_clicks() {
        // 50 frames of a 200 Hz sine, 8 kHz -> 16 kHz: after the warm-up the output must be the
        // ideal sine delayed by exactly `latency()`, frame boundaries included.
        let (r, out) = stream(8000, 16000, &sine(200.0, 8000, 0.5, 50 * 160));
        let body = &out[r.latency()..];
        let ideal = sine(200.0, 16000, 0.5, body.len());
        let max_err = body.iter().zip(&ideal).skip(160).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(max_err < 0.002, "max error vs the ideal sine: {max_err}");
        // The steepest step of 0.5·sin(2π·200·n/16000) is 0.5·2π·200/16000 ≈ 0.0393.
        // Skipping the first frame after the warm-up, whose start is the input's own click
        // (the sine is switched on at full slope).
        let max_jump = body[160..].windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max);
        assert!(max_jump < 0.041, "max sample-to-sample jump {max_jump}");
    }

    #[test]
    fn i16_path_matches_f32_path() {
        let input = sine(300.0, 8000, 0.5, 10 * 160);
        let pcm: Vec<i16> = input.iter().map(|&s| (s * 32768.0).round() as i16).collect();
        let (_, reference) = stream(8000, 16000, &input);
        let mut r = StreamResampler::new(8000, 16000).unwrap();
        let mut frame = [0i16; 320];
        for (chunk, expected) in pcm.chunks(160).zip(reference.chunks(320)) {
            r.process_i16(chunk, &mut frame).unwrap();
            for (&got, &want) in frame.iter().zip(expected) {
                assert!((got as f32 - want * 32768.0).abs() <= 2.0, "{got} vs {}", want * 32768.0);
            }
        }
        // Equal rates pass frames through untouched.
        let mut same = StreamResampler::new(16000, 16000).unwrap();
        let mut copy = [0i16; 320];
        same.process_i16(&frame, &mut copy).unwrap();
        assert_eq!(copy, frame);
    }
}
