//! A Piper voice: its JSON config (`NAME.onnx.json`), the phoneme-id mapping, and an ONNX
//! session over `NAME.onnx`.
//!
//! The model (VITS, exported by Piper) takes `input` i64 `[1, N]` phoneme ids, `input_lengths`
//! i64 `[1]`, `scales` f32 `[3]` (noise, length, noise_w) and, for multi-speaker voices, `sid`
//! i64 `[1]`; it returns `output` f32 `[1, 1, samples]` at the config's sample rate.
//!
//! Ids are laid out as Piper's training data was (piper-phonemize `phonemes_to_ids`): BOS `^`,
//! PAD `_`, then each phoneme followed by PAD, then EOS `$`. Phonemes the voice does not know
//! are dropped (Piper drops them too) and reported.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use serde::Deserialize;
use unicode_normalization::UnicodeNormalization;

use crate::speech::SpeechError;

const PAD: char = '_';
const BOS: char = '^';
const EOS: char = '$';

/// How a voice turns text into phonemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhonemeType {
    /// IPA from espeak-ng (nearly every Piper voice).
    Espeak,
    /// The text's own (NFD) characters are the phonemes.
    Text,
}

/// What synthesis needs from a voice's JSON config.
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    pub name: String,
    pub sample_rate: u32,
    /// espeak-ng voice for the phonemizer, e.g. `en-us`.
    pub espeak_voice: String,
    pub phoneme_type: PhonemeType,
    pub noise_scale: f32,
    pub length_scale: f32,
    pub noise_w: f32,
    pub num_speakers: u32,
    phoneme_id_map: HashMap<char, Vec<i64>>,
    phoneme_map: HashMap<char, Vec<char>>,
}

#[derive(Deserialize)]
struct RawConfig {
    audio: RawAudio,
    #[serde(default)]
    espeak: Option<RawEspeak>,
    #[serde(default)]
    inference: RawInference,
    #[serde(default)]
    phoneme_type: Option<String>,
    #[serde(default)]
    phoneme_map: HashMap<String, Vec<String>>,
    phoneme_id_map: HashMap<String, Vec<i64>>,
    #[serde(default)]
    num_speakers: Option<u32>,
}

#[derive(Deserialize)]
struct RawAudio {
    sample_rate: u32,
}

#[derive(Deserialize)]
struct RawEspeak {
    voice: String,
}

#[derive(Deserialize, Default)]
struct RawInference {
    noise_scale: Option<f32>,
    length_scale: Option<f32>,
    noise_w: Option<f32>,
}

/// Phoneme ids for one sentence and the phonemes the voice did not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhonemeIds {
    pub ids: Vec<i64>,
    pub missing: Vec<char>,
}

impl VoiceConfig {
    /// Reads and checks `path` (a Piper `NAME.onnx.json`).
    pub fn load(name: &str, path: &Path) -> Result<Self, SpeechError> {
        let text = std::fs::read_to_string(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
        Self::parse(name, &text).map_err(|reason| bad(path, reason))
    }

    /// Parses a config's JSON text; the error says what is wrong and where.
    pub fn parse(name: &str, json: &str) -> Result<Self, String> {
        let mut de = serde_json::Deserializer::from_str(json);
        let raw: RawConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| e.to_string())?;
        if !(1_000..=192_000).contains(&raw.audio.sample_rate) {
            return Err(format!("audio.sample_rate {} is not a plausible rate", raw.audio.sample_rate));
        }
        let phoneme_type = match raw.phoneme_type.as_deref().unwrap_or("espeak") {
            "espeak" => PhonemeType::Espeak,
            "text" => PhonemeType::Text,
            other => return Err(format!("phoneme_type {other:?} is not supported (espeak, text)")),
        };
        let espeak_voice = match (&raw.espeak, phoneme_type) {
            (Some(e), _) if !e.voice.trim().is_empty() => e.voice.trim().to_owned(),
            (_, PhonemeType::Espeak) => return Err("espeak.voice is missing".into()),
            _ => String::new(),
        };
        let mut phoneme_id_map = HashMap::with_capacity(raw.phoneme_id_map.len());
        for (key, ids) in raw.phoneme_id_map {
            let c = single_char(&key).ok_or_else(|| format!("phoneme_id_map key {key:?} is not one character"))?;
            if ids.is_empty() || ids.iter().any(|&id| id < 0) {
                return Err(format!("phoneme_id_map[{key:?}] must be a non-empty list of ids >= 0"));
            }
            phoneme_id_map.insert(c, ids);
        }
        for required in [PAD, BOS, EOS] {
            if !phoneme_id_map.contains_key(&required) {
                return Err(format!("phoneme_id_map lacks {required:?}"));
            }
        }
        let mut phoneme_map = HashMap::new();
        for (key, to) in raw.phoneme_map {
            let c = single_char(&key).ok_or_else(|| format!("phoneme_map key {key:?} is not one character"))?;
            let to: Option<Vec<char>> = to.iter().map(|p| single_char(p)).collect();
            phoneme_map
                .insert(c, to.ok_or_else(|| format!("phoneme_map[{key:?}] has a value that is not one character"))?);
        }
        let scale = |v: Option<f32>, default: f32, what: &str| -> Result<f32, String> {
            let v = v.unwrap_or(default);
            if v.is_finite() && (0.0..=10.0).contains(&v) {
                Ok(v)
            } else {
                Err(format!("inference.{what} {v} is out of range"))
            }
        };
        Ok(VoiceConfig {
            name: name.to_owned(),
            sample_rate: raw.audio.sample_rate,
            espeak_voice,
            phoneme_type,
            noise_scale: scale(raw.inference.noise_scale, 0.667, "noise_scale")?,
            length_scale: scale(raw.inference.length_scale, 1.0, "length_scale")?,
            noise_w: scale(raw.inference.noise_w, 0.8, "noise_w")?,
            num_speakers: raw.num_speakers.unwrap_or(1).max(1),
            phoneme_id_map,
            phoneme_map,
        })
    }

    /// Whether the voice has an id for `phoneme`.
    pub fn knows(&self, phoneme: char) -> bool {
        self.phoneme_id_map.contains_key(&phoneme)
    }

    /// `^ _ (phoneme _)* $`, after the config's `phoneme_map` substitutions.
    pub fn phoneme_ids(&self, phonemes: &[char]) -> PhonemeIds {
        let pad = &self.phoneme_id_map[&PAD];
        let mut ids = Vec::with_capacity(phonemes.len() * 2 + 3);
        let mut missing = Vec::new();
        ids.extend_from_slice(&self.phoneme_id_map[&BOS]);
        ids.extend_from_slice(pad);
        let mut push = |p: char| match self.phoneme_id_map.get(&p) {
            Some(mapped) => {
                ids.extend_from_slice(mapped);
                ids.extend_from_slice(pad);
            }
            None => missing.push(p),
        };
        for &p in phonemes {
            match self.phoneme_map.get(&p) {
                Some(mapped) => mapped.iter().for_each(|&m| push(m)),
                None => push(p),
            }
        }
        ids.extend_from_slice(&self.phoneme_id_map[&EOS]);
        PhonemeIds { ids, missing }
    }

    /// For `PhonemeType::Text` voices: the text's NFD characters are the phonemes.
    pub fn text_phonemes(text: &str) -> Vec<char> {
        text.nfd().collect()
    }
}

fn single_char(s: &str) -> Option<char> {
    let mut chars = s.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

fn bad(path: &Path, reason: String) -> SpeechError {
    SpeechError::VoiceConfig { path: path.to_path_buf(), reason }
}

/// One ONNX session over a voice's model. Not shared between threads (`Session::run` takes
/// `&mut self`): each pool worker owns one per voice it has used.
pub struct VoiceSession {
    pub config: Arc<VoiceConfig>,
    session: Session,
    has_sid: bool,
}

impl std::fmt::Debug for VoiceSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceSession").field("voice", &self.config.name).field("has_sid", &self.has_sid).finish()
    }
}

/// Options for building a voice session.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// ONNX Runtime intra-op threads for one synthesis.
    pub threads: usize,
    /// Let idle intra-op threads spin between operators (lower latency, burns the CPU other
    /// pools and calls need).
    pub spinning: bool,
}

impl VoiceSession {
    /// Builds a session over `model` (ONNX Runtime must be loaded: `onnx::ensure_loaded`) and
    /// checks that it has the inputs and output Piper voices have.
    pub fn load(
        environment: &ort::environment::Environment,
        model: &Path,
        config: Arc<VoiceConfig>,
        options: SessionOptions,
    ) -> Result<Self, SpeechError> {
        let onnx = |e: String| SpeechError::Onnx(format!("{}: {e}", model.display()));
        let session = Session::builder(environment)
            .map_err(|e| onnx(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| onnx(e.to_string()))?
            .with_intra_threads(options.threads.max(1))
            .map_err(|e| onnx(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| onnx(e.to_string()))?
            .with_intra_op_spinning(options.spinning)
            .map_err(|e| onnx(e.to_string()))?
            .commit_from_file(model)
            .map_err(|e| onnx(e.to_string()))?;
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for required in ["input", "input_lengths", "scales"] {
            if !names.contains(&required) {
                return Err(onnx(format!("not a Piper voice: no input {required:?} (inputs: {names:?})")));
            }
        }
        if session.outputs().is_empty() {
            return Err(onnx("the model has no output".into()));
        }
        let has_sid = names.contains(&"sid");
        Ok(VoiceSession { config, session, has_sid })
    }

    /// Input names of the model, for diagnostics and tests.
    pub fn input_names(&self) -> Vec<String> {
        self.session.inputs().iter().map(|i| i.name().to_owned()).collect()
    }

    /// Runs the model on one sentence's ids; f32 samples at the voice's rate.
    pub fn infer(&mut self, ids: &[i64], speaker: u32) -> Result<Vec<f32>, SpeechError> {
        if ids.len() < 3 {
            return Err(SpeechError::InvalidInput("no phonemes to synthesize".into()));
        }
        let n = ids.len();
        let c = &self.config;
        let input = Tensor::from_array(([1usize, n], ids.to_vec()))?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64]))?;
        let scales = Tensor::from_array(([3usize], vec![c.noise_scale, c.length_scale, c.noise_w]))?;
        let outputs = if self.has_sid {
            let sid = Tensor::from_array(([1usize], vec![i64::from(speaker.min(c.num_speakers - 1))]))?;
            self.session
                .run(ort::inputs! {"input" => input, "input_lengths" => lengths, "scales" => scales, "sid" => sid})?
        } else {
            self.session.run(ort::inputs! {"input" => input, "input_lengths" => lengths, "scales" => scales})?
        };
        let (_, samples) = outputs[0].try_extract_tensor::<f32>()?;
        Ok(samples.to_vec())
    }
}

/// Scales to a fixed peak and converts to i16, as Piper does per sentence (its peak is full
/// scale; `peak` < 1 leaves headroom for resampling). Near-silent output (peak below 0.01) is
/// not amplified.
pub fn to_pcm16(samples: &[f32], peak: f32) -> Vec<i16> {
    let max = samples.iter().fold(0.0f32, |m, s| if s.is_finite() { m.max(s.abs()) } else { m });
    let gain = peak.clamp(0.0, 1.0) * f32::from(i16::MAX) / max.max(0.01);
    samples.iter().map(|s| if s.is_finite() { (s * gain).round().clamp(-32768.0, 32767.0) as i16 } else { 0 }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{
        "audio": {"sample_rate": 16000},
        "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.5, "length_scale": 1.2, "noise_w": 0.7},
        "phoneme_map": {"c": ["k"]},
        "phoneme_id_map": {"_": [0], "^": [1], "$": [2], " ": [3], ",": [8], ".": [10],
                           "a": [14], "k": [23], "\u0327": [140, 141]}
    }"#;

    #[test]
    fn ids_are_bos_pad_phoneme_pad_eos() {
        let v = VoiceConfig::parse("t", MINIMAL).unwrap();
        assert_eq!(v.sample_rate, 16000);
        assert_eq!((v.noise_scale, v.length_scale, v.noise_w), (0.5, 1.2, 0.7));
        assert_eq!(v.num_speakers, 1);
        let ids = v.phoneme_ids(&['a', ' ', 'a', '.']);
        assert_eq!(ids.ids, vec![1, 0, 14, 0, 3, 0, 14, 0, 10, 0, 2]);
        assert!(ids.missing.is_empty());
    }

    #[test]
    fn unknown_phonemes_are_dropped_and_maps_apply() {
        let v = VoiceConfig::parse("t", MINIMAL).unwrap();
        // 'c' is mapped to 'k'; U+0327 has two ids; 'ʒ' is unknown.
        let ids = v.phoneme_ids(&['c', '\u{327}', 'ʒ', ',']);
        assert_eq!(ids.ids, vec![1, 0, 23, 0, 140, 141, 0, 8, 0, 2]);
        assert_eq!(ids.missing, vec!['ʒ']);
        assert_eq!(v.phoneme_ids(&[]).ids, vec![1, 0, 2]);
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let err = |json: &str| VoiceConfig::parse("t", json).unwrap_err();
        assert!(err("{").contains("EOF"), "{}", err("{"));
        assert!(err(r#"{"phoneme_id_map": {}}"#).contains("audio"));
        let no_pad = r#"{"audio":{"sample_rate":22050},"espeak":{"voice":"en"},"phoneme_id_map":{"^":[1],"$":[2]}}"#;
        assert!(err(no_pad).contains("'_'"), "{}", err(no_pad));
        let multi = r#"{"audio":{"sample_rate":22050},"espeak":{"voice":"en"},"phoneme_id_map":{"ab":[1]}}"#;
        assert!(err(multi).contains("not one character"));
        let rate = r#"{"audio":{"sample_rate":0},"espeak":{"voice":"en"},"phoneme_id_map":{}}"#;
        assert!(err(rate).contains("sample_rate"));
        let kind = r#"{"audio":{"sample_rate":22050},"phoneme_type":"pinyin","phoneme_id_map":{}}"#;
        assert!(err(kind).contains("pinyin"));
        let no_voice = r#"{"audio":{"sample_rate":22050},"phoneme_id_map":{"_":[0],"^":[1],"$":[2]}}"#;
        assert!(err(no_voice).contains("espeak.voice"));
        let neg = r#"{"audio":{"sample_rate":22050},"espeak":{"voice":"en"},"phoneme_id_map":{"_":[-1]}}"#;
        assert!(err(neg).contains("ids >= 0"));
        let scale = r#"{"audio":{"sample_rate":22050},"espeak":{"voice":"en"},"inference":{"length_scale":-1},
                        "phoneme_id_map":{"_":[0],"^":[1],"$":[2]}}"#;
        assert!(err(scale).contains("length_scale"));
    }

    #[test]
    fn the_shipped_voice_knows_english_ipa() {
        let paths = crate::speech::ModelPaths::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models"));
        let (_, json) = paths.voice(crate::speech::models::DEFAULT_VOICE);
        let v = VoiceConfig::load("joe", &json).expect("run `bash models/fetch.sh` first");
        assert_eq!(v.sample_rate, 22050);
        assert_eq!(v.espeak_voice, "en-us");
        for c in "həlˈoʊ wˈɜːld, ðɪs ɪz ɐ tˈɛst? ɹˈiəli! ŋ θ ʃ ʒ tʃ dʒ ɚ ɑː ɔː æ ʊ ᵻ ɾ ˌ .:;".chars()
        {
            assert!(v.knows(c), "{c:?} ({:04X}) is not in the voice's map", c as u32);
        }
    }

    #[test]
    fn pcm_is_peak_normalised_without_boosting_silence() {
        let pcm = to_pcm16(&[0.0, 0.25, -0.5, 0.1], 1.0);
        assert_eq!(pcm, vec![0, 16384, -32767, 6553]);
        let quiet = to_pcm16(&[0.001, -0.001], 1.0);
        assert!(quiet.iter().all(|s| s.abs() <= 3277), "{quiet:?}");
        assert_eq!(to_pcm16(&[f32::NAN, 0.5], 0.5), vec![0, 16384]);
    }
}
