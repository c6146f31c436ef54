//! Callers whose voices are not the bot's, heard through a phone line, for tests and benches.
//!
//! Judging understanding or latency with the bot's own Piper voice flatters both (whisper and
//! the endpointer were tuned on it), so callers speak with Debian's `espeak-ng` (voice variants,
//! speeds, pitches) and `flite` (`slt`, `rms`, `awb`, `kal`), both installed by
//! `scripts/setup.sh`. `through_phone` then carries the speech as a Twilio leg would: a level
//! between quiet and loud, line hiss, G.711 µ-law at 8 kHz and a few lost 20 ms packets, all
//! decided by a seed so a failing case can be replayed.
//!
//! ```ignore
//! let voice = &voices()[0];
//! let pcm = say_parts(voice, &["Yes, sure,", "go ahead."], &[Duration::from_millis(700)])?;
//! let ulaw = through_phone(&pcm, &Channel::random(7));
//! ```

// Each test binary or bench that includes `common` uses a different part of this.
#![allow(dead_code)]

use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use callcenter::media::decode::{decode_file, resample_clip};
use callcenter::media::{g711, pcm};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The phone line's sample rate: what `say` returns and `through_phone` carries.
pub const RATE: u32 = 8_000;
/// One media packet of Twilio's stream: 20 ms at 8 kHz.
const FRAME: usize = 160;
/// A sample this quiet or quieter (about -50 dBFS) is the synthesizer's silence, not speech.
const SILENCE: i16 = 100;
/// µ-law's code for a zero sample: what a lost packet is replaced with.
const ULAW_SILENCE: u8 = 0xFF;

/// A synthetic caller: a speech engine with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Voice {
    /// Short and unique within `voices()`, e.g. `espeak en-gb+f2 s140 p70` or `flite kal`.
    pub name: String,
    pub engine: Engine,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Engine {
    /// `espeak-ng -v VOICE -s SPEED -p PITCH`: VOICE is a language with an optional variant
    /// (`en-us+m3`), SPEED in words per minute (espeak-ng's default 175), PITCH 0-99 (50).
    Espeak { voice: String, speed: u32, pitch: u32 },
    /// `flite -voice VOICE`: one of the voices compiled into Debian's flite.
    Flite { voice: String },
}

impl Voice {
    pub fn espeak(voice: &str, speed: u32, pitch: u32) -> Voice {
        Voice {
            name: format!("espeak {voice} s{speed} p{pitch}"),
            engine: Engine::Espeak { voice: voice.to_owned(), speed, pitch },
        }
    }

    pub fn flite(voice: &str) -> Voice {
        Voice { name: format!("flite {voice}"), engine: Engine::Flite { voice: voice.to_owned() } }
    }
}

/// The standard set: six espeak-ng variants (American and British, male and female, slow to
/// fast, low to high) and all four flite voices.
pub fn voices() -> Vec<Voice> {
    vec![
        Voice::espeak("en-us", 165, 50),
        Voice::espeak("en-us+m3", 150, 40),
        Voice::espeak("en-us+f2", 175, 65),
        Voice::espeak("en-gb", 140, 35),
        Voice::espeak("en-gb+f2", 190, 70),
        Voice::espeak("en-gb-x-rp+m7", 200, 45),
        Voice::flite("slt"),
        Voice::flite("rms"),
        Voice::flite("awb"),
        Voice::flite("kal"),
    ]
}

/// `text` said by `voice`: 8 kHz mono PCM with the synthesizer's leading and trailing silence
/// cut, so the first and last samples are speech (a latency measured from the last sample
/// starts at the caller's last voiced frame).
pub fn say(voice: &Voice, text: &str) -> anyhow::Result<Vec<i16>> {
    let dir = tempfile::tempdir().context("creating a temp dir for synthesis")?;
    let wav = dir.path().join("say.wav");
    synthesize(voice, text, &wav)?;
    let audio = decode_file(&wav).with_context(|| format!("{}: reading what it wrote", voice.name))?;
    let at_8k = resample_clip(&audio.samples, audio.sample_rate, RATE)?;
    let mut samples = vec![0i16; at_8k.len()];
    pcm::f32_to_i16(&at_8k, &mut samples);
    let speech = trim_silence(&samples);
    ensure!(!speech.is_empty(), "{} said nothing audible for {text:?}", voice.name);
    Ok(speech.to_vec())
}

/// `parts` said one after the other with `pauses[i]` of silence between part i and i + 1: a
/// caller who stops mid-sentence ("Yes, sure," 700 ms "go ahead.").
pub fn say_parts(voice: &Voice, parts: &[&str], pauses: &[Duration]) -> anyhow::Result<Vec<i16>> {
    ensure!(
        !parts.is_empty() && pauses.len() + 1 == parts.len(),
        "say_parts needs one pause fewer than parts (got {} parts, {} pauses)",
        parts.len(),
        pauses.len()
    );
    let mut speech = say(voice, parts[0])?;
    for (part, pause) in parts[1..].iter().zip(pauses) {
        speech.resize(speech.len() + samples_in(*pause), 0);
        speech.extend(say(voice, part)?);
    }
    Ok(speech)
}

/// Runs the engine's command line, writing a WAV file at `wav`.
fn synthesize(voice: &Voice, text: &str, wav: &Path) -> anyhow::Result<()> {
    let (program, mut command) = match &voice.engine {
        Engine::Espeak { voice, speed, pitch } => {
            let mut command = Command::new("espeak-ng");
            command.args(["-v", voice, "-s", &speed.to_string(), "-p", &pitch.to_string(), "-w"]).arg(wav).arg(text);
            ("espeak-ng", command)
        }
        Engine::Flite { voice } => {
            let mut command = Command::new("flite");
            command.args(["-voice", voice, "-t", text, "-o"]).arg(wav);
            ("flite", command)
        }
    };
    let output = run(program, &mut command)?;
    ensure!(
        output.status.success() && wav.is_file(),
        "{} failed for {text:?} ({}): {}",
        voice.name,
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// Runs `command`; a `program` that is not installed is said so, with how to install it.
pub(crate) fn run(program: &str, command: &mut Command) -> anyhow::Result<std::process::Output> {
    match command.output() {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            bail!("`{program}` is not installed: run `bash scripts/setup.sh` (Debian package {program})")
        }
        other => other.with_context(|| format!("running {program}")),
    }
}

/// `samples` from the first to the last sample louder than the synthesizer's silence.
fn trim_silence(samples: &[i16]) -> &[i16] {
    let loud = |s: &i16| s.unsigned_abs() > SILENCE.unsigned_abs();
    match (samples.iter().position(loud), samples.iter().rposition(loud)) {
        (Some(first), Some(last)) => &samples[first..=last],
        _ => &[],
    }
}

fn samples_in(duration: Duration) -> usize {
    (duration.as_secs_f64() * f64::from(RATE)).round() as usize
}

/// A phone line as a caller's speech reaches the gateway.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Channel {
    /// Active speech level in dBFS (RMS of the 20 ms frames within 40 dB of the loudest):
    /// -35 is a quiet caller on a mobile, -15 a loud one close to the microphone.
    pub level_dbfs: f32,
    /// Line hiss (white noise) this many dB under the speech level; `None`: no noise.
    pub snr_db: Option<f32>,
    /// Share of 20 ms packets lost (replaced by silence), 0..1.
    pub loss: f32,
    /// Seeds the noise and the lost packets.
    pub seed: u64,
}

impl Channel {
    /// A clean line: -20 dBFS, no noise, no loss.
    pub fn clean() -> Channel {
        Channel { level_dbfs: -20.0, snr_db: None, loss: 0.0, seed: 0 }
    }

    /// A line drawn from `seed` within the ranges callers meet: level -35..-15 dBFS, hiss at
    /// 15..25 dB SNR, 1..2 % of packets lost.
    pub fn random(seed: u64) -> Channel {
        let mut rng = StdRng::seed_from_u64(seed);
        Channel {
            level_dbfs: rng.random_range(-35.0..=-15.0),
            snr_db: Some(rng.random_range(15.0..=25.0)),
            loss: rng.random_range(0.01..=0.02),
            seed,
        }
    }
}

/// `pcm` (8 kHz) carried by `channel`: scaled to its level, hiss added, µ-law encoded, lost
/// packets replaced by µ-law silence (as a jitter buffer with no concealment plays them).
pub fn through_phone(pcm: &[i16], channel: &Channel) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(channel.seed);
    let gain = db_to_amplitude(channel.level_dbfs) / active_rms(pcm).max(1e-9);
    let noise_rms = channel.snr_db.map_or(0.0, |snr| db_to_amplitude(channel.level_dbfs - snr));
    let line: Vec<i16> = pcm
        .iter()
        .map(|&s| {
            let sample = f32::from(s) / 32768.0 * gain + noise_rms * gaussian(&mut rng);
            (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    let mut ulaw = vec![0u8; line.len()];
    g711::encode_ulaw(&line, &mut ulaw);
    for packet in ulaw.chunks_mut(FRAME) {
        if rng.random::<f32>() < channel.loss {
            packet.fill(ULAW_SILENCE);
        }
    }
    ulaw
}

/// What the gateway's speech recognizer gets from `ulaw`: decoded and resampled to 16 kHz,
/// full scale ±1.0.
pub fn heard_at_16k(ulaw: &[u8]) -> Vec<f32> {
    let mut linear = vec![0i16; ulaw.len()];
    g711::decode_ulaw(ulaw, &mut linear);
    let mut floats = vec![0f32; linear.len()];
    pcm::i16_to_f32(&linear, &mut floats);
    resample_clip(&floats, RATE, 16_000).expect("8 kHz to 16 kHz is a supported resampling")
}

/// RMS (full scale 1.0) of the 20 ms frames within 40 dB of the loudest: the speech's level
/// without the pauses in it, so a caller who pauses is not made louder to make up for them.
fn active_rms(pcm: &[i16]) -> f32 {
    let frames: Vec<f64> = pcm
        .chunks(FRAME)
        .map(|frame| frame.iter().map(|&s| (f64::from(s) / 32768.0).powi(2)).sum::<f64>() / frame.len() as f64)
        .collect();
    let loudest = frames.iter().copied().fold(0.0, f64::max);
    let active: Vec<f64> = frames.into_iter().filter(|&power| power >= loudest * 1e-4).collect();
    if active.is_empty() { 0.0 } else { (active.iter().sum::<f64>() / active.len() as f64).sqrt() as f32 }
}

fn db_to_amplitude(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// A standard normal sample (Box-Muller), so hiss has the level asked for.
fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}
