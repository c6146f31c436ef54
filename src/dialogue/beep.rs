//! Answering-machine beep detection: a sustained, pure tone between about 850 and 1400 Hz
//! lasting 200 ms or more, found with Goertzel filters over 20 ms blocks of the caller's PCM.
//!
//! Per block: a Hann window, one Goertzel filter every 12.5 Hz across the band, and the block's
//! energy. The block is tonal when its loudest filter holds at least `min_purity` (0.8) of the
//! block's energy, normalised so a pure sine scores 1.0 (a sine between two filters still
//! scores about 0.98, so a beep is found down to about 8 dB SNR). Speech does not: a vowel
//! spreads its energy over a dozen harmonics and the formants (measured: 0.2-0.36 for /a/ at
//! 120-250 Hz pitch; 0.74 for a contrived steady vowel with a narrow formant exactly on one
//! harmonic), and its pitch wanders. A beep is a run of tonal blocks whose
//! frequency stays within `max_drift_hz` of where it started (a sweep or a sung note does not),
//! at least `min_duration_ms` long; one non-tonal block inside a run (a lost packet) is
//! forgiven.
//!
//! It is reported once, when the tone ends (so a message said after it is not talked over
//! the beep), or when it has lasted `max_duration_ms`. Pure: samples in, [`Beep`] out; no
//! allocation after [`BeepDetector::new`].

use thiserror::Error;

#[derive(Debug, Clone, PartialEq)]
pub struct BeepConfig {
    /// Sample rate of the PCM given to `push` (8000 for G.711).
    pub sample_rate: u32,
    /// The band searched for the tone.
    pub min_hz: f32,
    pub max_hz: f32,
    /// Spacing of the Goertzel filters.
    pub step_hz: f32,
    /// Analysis block length.
    pub block_ms: u32,
    /// Shortest tone reported.
    pub min_duration_ms: u32,
    /// A tone still going after this long is reported anyway.
    pub max_duration_ms: u32,
    /// Share of a block's energy the strongest filter must hold (1.0 = a pure sine).
    pub min_purity: f32,
    /// RMS level (full scale 1.0) below which a block is silence, never a tone.
    pub min_rms: f32,
    /// How far the tone may wander from its first block's frequency.
    pub max_drift_hz: f32,
}

impl Default for BeepConfig {
    fn default() -> Self {
        Self {
            sample_rate: 8000,
            min_hz: 850.0,
            max_hz: 1400.0,
            step_hz: 12.5,
            block_ms: 20,
            min_duration_ms: 200,
            max_duration_ms: 1500,
            min_purity: 0.8,
            // about -46 dBFS: line noise, not a beep
            min_rms: 0.005,
            max_drift_hz: 30.0,
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum BeepConfigError {
    #[error("sample_rate must be between 8000 and 48000")]
    SampleRate,
    #[error("the band must satisfy 0 < min_hz < max_hz < sample_rate / 2, with step_hz > 0")]
    Band,
    #[error("block_ms must hold at least 80 samples and resolve step_hz (block_ms >= 1000 / (4 * step_hz))")]
    Block,
    #[error("min_duration_ms must be at least two blocks and at most max_duration_ms")]
    Duration,
    #[error("min_purity must be in (0, 1]")]
    Purity,
}

/// A detected beep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beep {
    /// Mean frequency of the tone's blocks.
    pub frequency_hz: f32,
    /// How long the tone lasted (up to `max_duration_ms` if it is still going).
    pub duration_ms: u32,
}

pub struct BeepDetector {
    config: BeepConfig,
    window: Vec<f32>,
    /// `2 * sum(w^2) / sum(w)^2`: turns |X|^2 / energy into 1.0 for a pure sine.
    purity_scale: f32,
    /// (frequency, 2 cos(omega)) per filter.
    filters: Vec<(f32, f32)>,
    block: Vec<f32>,
    filled: usize,
    run: Run,
}

#[derive(Debug, Default, Clone, Copy)]
struct Run {
    tonal_blocks: u32,
    start_hz: f32,
    sum_hz: f32,
    /// Non-tonal blocks since the last tonal one.
    gap: u32,
    reported: bool,
}

impl BeepDetector {
    pub fn new(config: BeepConfig) -> Result<Self, BeepConfigError> {
        let c = &config;
        if !(8000..=48_000).contains(&c.sample_rate) {
            return Err(BeepConfigError::SampleRate);
        }
        let nyquist = c.sample_rate as f32 / 2.0;
        if !(c.min_hz > 0.0 && c.min_hz < c.max_hz && c.max_hz < nyquist && c.step_hz > 0.0) {
            return Err(BeepConfigError::Band);
        }
        let block_len = (c.sample_rate as u64 * c.block_ms as u64 / 1000) as usize;
        if block_len < 80 || (c.block_ms as f32) < 1000.0 / (4.0 * c.step_hz) {
            return Err(BeepConfigError::Block);
        }
        if c.min_duration_ms < 2 * c.block_ms || c.min_duration_ms > c.max_duration_ms {
            return Err(BeepConfigError::Duration);
        }
        if !(c.min_purity > 0.0 && c.min_purity <= 1.0) {
            return Err(BeepConfigError::Purity);
        }
        let window: Vec<f32> = (0..block_len)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * n as f32 / block_len as f32).cos())
            .collect();
        let sum: f32 = window.iter().sum();
        let sum_sq: f32 = window.iter().map(|w| w * w).sum();
        let mut filters = Vec::new();
        let mut f = c.min_hz;
        while f <= c.max_hz + 1e-3 {
            let omega = 2.0 * std::f32::consts::PI * f / c.sample_rate as f32;
            filters.push((f, 2.0 * omega.cos()));
            f += c.step_hz;
        }
        Ok(Self {
            purity_scale: 2.0 * sum_sq / (sum * sum),
            window,
            filters,
            block: vec![0.0; block_len],
            filled: 0,
            run: Run::default(),
            config,
        })
    }

    /// Feeds PCM of any length; returns a beep when one has just ended (or reached
    /// `max_duration_ms`). At most one per call: feed a frame at a time.
    pub fn push(&mut self, samples: &[i16]) -> Option<Beep> {
        let mut found = None;
        for &s in samples {
            if let Some(slot) = self.block.get_mut(self.filled) {
                *slot = crate::media::pcm::sample_to_f32(s);
            }
            self.filled += 1;
            if self.filled == self.block.len() {
                self.filled = 0;
                let tone = self.analyse_block();
                if let Some(beep) = self.advance(tone) {
                    found = found.or(Some(beep));
                }
            }
        }
        found
    }

    /// Forgets any tone in progress (e.g. when the call moves on).
    pub fn reset(&mut self) {
        self.filled = 0;
        self.run = Run::default();
    }

    /// The block's tone frequency, if the block is a pure enough, loud enough tone.
    fn analyse_block(&self) -> Option<f32> {
        let mut energy = 0.0f32;
        let mut raw_energy = 0.0f32;
        for (x, w) in self.block.iter().zip(&self.window) {
            let y = x * w;
            energy += y * y;
            raw_energy += x * x;
        }
        let rms = (raw_energy / self.block.len() as f32).sqrt();
        if rms < self.config.min_rms || energy <= 0.0 {
            return None;
        }
        let mut best = (0.0f32, 0.0f32);
        for &(freq, coeff) in &self.filters {
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for (x, w) in self.block.iter().zip(&self.window) {
                let s0 = x * w + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
            if power > best.1 {
                best = (freq, power);
            }
        }
        let purity = best.1 * self.purity_scale / energy;
        (purity >= self.config.min_purity).then_some(best.0)
    }

    fn advance(&mut self, tone: Option<f32>) -> Option<Beep> {
        let c = &self.config;
        let max_blocks = c.max_duration_ms / c.block_ms;
        let run = &mut self.run;
        match tone {
            Some(hz) if run.tonal_blocks > 0 && (hz - run.start_hz).abs() <= c.max_drift_hz => {
                run.tonal_blocks += 1;
                run.sum_hz += hz;
                run.gap = 0;
                if run.tonal_blocks >= max_blocks && !run.reported {
                    run.reported = true;
                    return Some(self.beep());
                }
                None
            }
            Some(hz) => {
                // A new tone (or one that jumped in frequency): the old run ends here.
                let ended = self.end_run();
                self.run = Run { tonal_blocks: 1, start_hz: hz, sum_hz: hz, gap: 0, reported: false };
                ended
            }
            None if run.tonal_blocks > 0 => {
                run.gap += 1;
                if run.gap > 1 {
                    let ended = self.end_run();
                    self.run = Run::default();
                    return ended;
                }
                None
            }
            None => None,
        }
    }

    /// The beep of the run that just ended, if it was long enough and not yet reported.
    fn end_run(&self) -> Option<Beep> {
        let min_blocks = self.config.min_duration_ms.div_ceil(self.config.block_ms);
        (self.run.tonal_blocks >= min_blocks && !self.run.reported).then(|| self.beep())
    }

    fn beep(&self) -> Beep {
        Beep {
            frequency_hz: self.run.sum_hz / self.run.tonal_blocks.max(1) as f32,
            duration_ms: self.run.tonal_blocks * self.config.block_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    const RATE: u32 = 8000;

    fn ms(n: u32) -> usize {
        (RATE * n / 1000) as usize
    }

    fn tone(hz: f32, dur_ms: u32, amplitude: f32) -> Vec<f32> {
        (0..ms(dur_ms)).map(|n| amplitude * (2.0 * PI * hz * n as f32 / RATE as f32).sin()).collect()
    }

    fn silence(dur_ms: u32) -> Vec<f32> {
        vec![0.0; ms(dur_ms)]
    }

    /// Deterministic white noise in [-amplitude, amplitude] (xorshift32).
    fn noise(len: usize, amplitude: f32, seed: u32) -> Vec<f32> {
        let mut x = seed.max(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                amplitude * ((x as f32 / u32::MAX as f32) * 2.0 - 1.0)
            })
            .collect()
    }

    fn rms(s: &[f32]) -> f32 {
        (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).sqrt()
    }

    /// A vowel: harmonics of a (possibly gliding, jittered) pitch shaped by formant resonances.
    fn vowel(f0_start: f32, f0_end: f32, formants: &[(f32, f32)], dur_ms: u32, seed: u32) -> Vec<f32> {
        let len = ms(dur_ms);
        let jitter = noise(len, 0.01, seed);
        let mut phase = [0.0f32; 40];
        let mut out = Vec::with_capacity(len);
        for (n, j) in jitter.iter().enumerate() {
            let t = n as f32 / len as f32;
            let f0 = (f0_start + (f0_end - f0_start) * t) * (1.0 + j);
            let mut v = 0.0;
            for (h, ph) in phase.iter_mut().enumerate() {
                let fh = f0 * (h + 1) as f32;
                if fh >= RATE as f32 / 2.0 {
                    break;
                }
                *ph += 2.0 * PI * fh / RATE as f32;
                // glottal source falls ~12 dB per octave; formants lift the harmonics near them
                let source = 1.0 / (h + 1) as f32;
                let gain: f32 = formants.iter().map(|&(f, bw)| 1.0 / (1.0 + ((fh - f) / bw).powi(2))).sum();
                v += source * gain * ph.sin();
            }
            out.push(v);
        }
        let peak = out.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-9);
        out.iter().map(|x| 0.5 * x / peak).collect()
    }

    fn pcm(signal: &[f32]) -> Vec<i16> {
        signal.iter().map(|x| (x.clamp(-1.0, 1.0) * 32767.0) as i16).collect()
    }

    /// Feeds 20 ms frames, then a second of silence; all beeps reported.
    fn detect_with(config: BeepConfig, signal: &[f32], chunk: usize) -> Vec<Beep> {
        let mut d = BeepDetector::new(config).unwrap();
        let mut all = pcm(signal);
        all.extend(pcm(&silence(1000)));
        all.chunks(chunk).filter_map(|c| d.push(c)).collect()
    }

    fn detect(signal: &[f32]) -> Vec<Beep> {
        detect_with(BeepConfig::default(), signal, ms(20))
    }

    #[test]
    fn finds_pure_tones_across_the_band() {
        for hz in [850.0, 1000.0, 1012.5, 1100.0, 1250.0, 1400.0] {
            let mut signal = silence(300);
            signal.extend(tone(hz, 400, 0.3));
            let beeps = detect(&signal);
            assert_eq!(beeps.len(), 1, "{hz} Hz: {beeps:?}");
            assert!((beeps[0].frequency_hz - hz).abs() <= 25.0, "{hz} Hz: {beeps:?}");
            assert!((380..=440).contains(&beeps[0].duration_ms), "{hz} Hz: {beeps:?}");
        }
    }

    #[test]
    fn finds_a_tone_in_noise() {
        let beep = tone(1000.0, 300, 0.3);
        for (snr_db, seed) in [(20.0f32, 7), (10.0, 8), (8.0, 9)] {
            // white noise of the given SNR, over the whole clip
            let noise_rms = rms(&beep) / 10f32.powf(snr_db / 20.0);
            let amplitude = noise_rms * 3f32.sqrt();
            let mut signal = noise(ms(500), amplitude, seed);
            let tail = noise(ms(800), amplitude, seed + 100);
            let start = signal.len();
            signal.extend(tail);
            for (i, b) in beep.iter().enumerate() {
                signal[start + ms(100) + i] += b;
            }
            let beeps = detect(&signal);
            assert_eq!(beeps.len(), 1, "SNR {snr_db} dB: {beeps:?}");
            assert!((beeps[0].frequency_hz - 1000.0).abs() <= 25.0);
        }
        // Below that the tone drowns: 0 dB SNR is not reported.
        let noise_rms = rms(&beep);
        let mut signal = noise(ms(1000), noise_rms * 3f32.sqrt(), 21);
        for (i, b) in beep.iter().enumerate() {
            signal[ms(300) + i] += b;
        }
        assert_eq!(detect(&signal), vec![]);
        // Noise alone is not a beep.
        assert_eq!(detect(&noise(ms(2000), 0.3, 3)), vec![]);
    }

    #[test]
    fn ignores_short_quiet_and_out_of_band_tones() {
        assert_eq!(detect(&tone(1000.0, 120, 0.3)), vec![], "120 ms is a click, not a beep");
        assert_eq!(detect(&tone(1000.0, 600, 0.001)), vec![], "-60 dBFS is line noise");
        assert_eq!(detect(&tone(440.0, 600, 0.3)), vec![]);
        assert_eq!(detect(&tone(2000.0, 600, 0.3)), vec![]);
        assert_eq!(detect(&silence(2000)), vec![]);
    }

    #[test]
    fn ignores_dtmf_and_sweeps() {
        // The key "1": 697 Hz + 1209 Hz.
        let dtmf: Vec<f32> = tone(697.0, 500, 0.2).iter().zip(tone(1209.0, 500, 0.2)).map(|(a, b)| a + b).collect();
        assert_eq!(detect(&dtmf), vec![]);
        // 900 -> 1300 Hz in 400 ms: tonal throughout, but never steady.
        let sweep: Vec<f32> = (0..ms(400))
            .scan(0.0f32, |phase, n| {
                let hz = 900.0 + 400.0 * n as f32 / ms(400) as f32;
                *phase += 2.0 * PI * hz / RATE as f32;
                Some(0.3 * phase.sin())
            })
            .collect();
        assert_eq!(detect(&sweep), vec![]);
    }

    #[test]
    fn ignores_vowels_even_steady_ones() {
        // (F1, F2, F3) with bandwidths: /a/, /i/, /u/, /o/, and a high /a/ with F2 at 1 kHz.
        let vowels: [&[(f32, f32)]; 5] = [
            &[(730.0, 90.0), (1090.0, 110.0), (2440.0, 170.0)],
            &[(270.0, 60.0), (2290.0, 100.0), (3010.0, 120.0)],
            &[(300.0, 60.0), (870.0, 80.0), (2240.0, 120.0)],
            &[(570.0, 80.0), (840.0, 80.0), (2410.0, 120.0)],
            &[(850.0, 80.0), (1000.0, 60.0), (2800.0, 150.0)],
        ];
        for (i, formants) in vowels.iter().enumerate() {
            for (f0a, f0b) in [(120.0, 120.0), (110.0, 140.0), (210.0, 190.0), (250.0, 250.0)] {
                let v = vowel(f0a, f0b, formants, 800, 11 + i as u32);
                assert_eq!(detect(&v), vec![], "vowel {i} at {f0a}-{f0b} Hz");
            }
        }
    }

    #[test]
    fn long_tone_reported_once_at_the_limit() {
        let beeps = detect(&tone(1000.0, 3000, 0.3));
        assert_eq!(beeps.len(), 1, "{beeps:?}");
        assert_eq!(beeps[0].duration_ms, 1500);
    }

    #[test]
    fn a_lost_frame_inside_the_beep_is_forgiven() {
        let mut signal = tone(1000.0, 160, 0.3);
        signal.extend(silence(20));
        signal.extend(tone(1000.0, 160, 0.3));
        let beeps = detect(&signal);
        assert_eq!(beeps.len(), 1, "{beeps:?}");
        // Two separate short tones with a real pause are two clicks, not a beep.
        let mut signal = tone(1000.0, 140, 0.3);
        signal.extend(silence(100));
        signal.extend(tone(1000.0, 140, 0.3));
        assert_eq!(detect(&signal), vec![]);
    }

    #[test]
    fn chunk_size_and_sample_rate_do_not_matter() {
        let mut signal = silence(250);
        signal.extend(tone(1000.0, 300, 0.3));
        let reference = detect(&signal);
        assert_eq!(reference.len(), 1);
        for chunk in [1, 37, 160, 1000] {
            assert_eq!(detect_with(BeepConfig::default(), &signal, chunk), reference, "chunk {chunk}");
        }
        // 16 kHz: same tone, twice the samples.
        let wide: Vec<f32> =
            (0..16_000 * 3 / 10).map(|n| 0.3 * (2.0 * PI * 1000.0 * n as f32 / 16_000.0).sin()).collect();
        let mut d = BeepDetector::new(BeepConfig { sample_rate: 16_000, ..BeepConfig::default() }).unwrap();
        let mut all = pcm(&wide);
        all.extend(vec![0i16; 16_000]);
        let beeps: Vec<Beep> = all.chunks(320).filter_map(|c| d.push(c)).collect();
        assert_eq!(beeps.len(), 1);
        assert!((beeps[0].frequency_hz - 1000.0).abs() <= 25.0);
    }

    #[test]
    fn rejects_bad_configs() {
        let ok = BeepConfig::default();
        assert_eq!(
            BeepDetector::new(BeepConfig { sample_rate: 4000, ..ok.clone() }).err(),
            Some(BeepConfigError::SampleRate)
        );
        assert_eq!(BeepDetector::new(BeepConfig { min_hz: 1500.0, ..ok.clone() }).err(), Some(BeepConfigError::Band));
        assert_eq!(BeepDetector::new(BeepConfig { max_hz: 4000.0, ..ok.clone() }).err(), Some(BeepConfigError::Band));
        assert_eq!(BeepDetector::new(BeepConfig { block_ms: 5, ..ok.clone() }).err(), Some(BeepConfigError::Block));
        assert_eq!(
            BeepDetector::new(BeepConfig { min_duration_ms: 20, ..ok.clone() }).err(),
            Some(BeepConfigError::Duration)
        );
        assert_eq!(BeepDetector::new(BeepConfig { min_purity: 0.0, ..ok }).err(), Some(BeepConfigError::Purity));
    }

    /// Real speech from espeak-ng (a voicemail greeting) never triggers; the beep after it does.
    #[test]
    fn espeak_voicemail_greeting_then_beep() {
        let dir = tempfile::tempdir().expect("temp dir");
        let wav = dir.path().join("greeting.wav");
        let out = std::process::Command::new("espeak-ng")
            .args(["-s", "160", "-w"])
            .arg(&wav)
            .arg("Hi, you have reached Anna. I am not available right now. Please leave a message after the tone, and I will call you back. Aaah. Oooh. Eeee.")
            .output()
            .expect("espeak-ng is installed (scripts/setup.sh)");
        assert!(out.status.success(), "espeak-ng failed: {}", String::from_utf8_lossy(&out.stderr));
        let clip = crate::media::decode::decode_file(&wav).expect("espeak WAV decodes");
        let speech = crate::media::decode::resample_clip(&clip.samples, clip.sample_rate, RATE).expect("resample");
        assert!(speech.len() > ms(5000), "a greeting of several seconds");
        assert_eq!(detect(&speech), vec![], "speech is not a beep");
        let mut with_beep = speech.clone();
        with_beep.extend(silence(400));
        with_beep.extend(tone(1000.0, 350, 0.25));
        let beeps = detect(&with_beep);
        assert_eq!(beeps.len(), 1, "{beeps:?}");
        assert!((beeps[0].frequency_hz - 1000.0).abs() <= 25.0);
    }
}
