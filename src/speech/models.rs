//! Where the model files live. `models/fetch.sh` lays them out; a user may point
//! `--models-dir` (env `CALLCENTER_MODELS_DIR`) elsewhere, and may add Piper voices
//! (`voices/NAME.onnx` + `voices/NAME.onnx.json`).

use std::path::{Path, PathBuf};

use super::SpeechError;

/// The default voice `models/fetch.sh` installs.
pub const DEFAULT_VOICE: &str = "en_US-joe-medium";

/// The whisper model used when none is chosen (`--stt-model`).
pub const DEFAULT_STT_MODEL: &str = "tiny.en";

/// A whisper model `models/fetch.sh` makes, by the name `--stt-model` takes; its file is
/// `ggml-<name>.bin` in the models directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SttModel {
    name: &'static str,
    /// The command that makes the file.
    fetch: &'static str,
}

/// Every model `--stt-model` accepts (docs/BENCHMARKS.md compares them).
const STT_MODELS: [SttModel; 5] = [
    SttModel { name: "tiny.en", fetch: "bash models/fetch.sh" },
    SttModel { name: "tiny.en-q8_0", fetch: "bash models/fetch.sh --quantized" },
    SttModel { name: "base", fetch: "bash models/fetch.sh --base" },
    SttModel { name: "base-q8_0", fetch: "bash models/fetch.sh --base" },
    SttModel { name: "base-q5_1", fetch: "bash models/fetch.sh --base" },
];

impl SttModel {
    /// The model called `name`; an unknown name is an error listing the known ones.
    pub fn named(name: &str) -> Result<SttModel, SpeechError> {
        STT_MODELS.iter().copied().find(|m| m.name == name).ok_or_else(|| SpeechError::UnknownSttModel {
            name: name.to_owned(),
            known: STT_MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
        })
    }

    pub fn all() -> &'static [SttModel] {
        &STT_MODELS
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The model file, whether or not it is there.
    pub fn path(&self, paths: &ModelPaths) -> PathBuf {
        paths.whisper(self.name)
    }

    /// The model file, or an error saying which `models/fetch.sh` command makes it.
    pub fn require(&self, paths: &ModelPaths) -> Result<PathBuf, SpeechError> {
        let path = self.path(paths);
        if path.is_file() {
            Ok(path)
        } else {
            Err(SpeechError::MissingSttModel { name: self.name, path, fetch: self.fetch })
        }
    }
}

impl Default for SttModel {
    fn default() -> Self {
        SttModel::named(DEFAULT_STT_MODEL).expect("the default model is a known one")
    }
}

impl std::fmt::Display for SttModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Paths of every model under one models directory.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    pub root: PathBuf,
}

impl ModelPaths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ModelPaths { root: root.into() }
    }

    /// `$CALLCENTER_MODELS_DIR`, else `./models`.
    pub fn from_env() -> Self {
        match std::env::var_os("CALLCENTER_MODELS_DIR") {
            Some(dir) if !dir.is_empty() => ModelPaths::new(dir),
            _ => ModelPaths::new("models"),
        }
    }

    pub fn onnxruntime(&self) -> PathBuf {
        self.root.join("lib").join("libonnxruntime.so")
    }

    pub fn silero_vad(&self) -> PathBuf {
        self.root.join("silero_vad.onnx")
    }

    /// Smart Turn v3.2, the end-of-turn model.
    pub fn smart_turn(&self) -> PathBuf {
        self.root.join("smart-turn-v3.2-cpu.onnx")
    }

    /// `ggml-<name>.bin`, e.g. `tiny.en` or `base`.
    pub fn whisper(&self, name: &str) -> PathBuf {
        self.root.join(format!("ggml-{name}.bin"))
    }

    /// A Piper voice: (`voices/NAME.onnx`, `voices/NAME.onnx.json`).
    pub fn voice(&self, name: &str) -> (PathBuf, PathBuf) {
        let dir = self.root.join("voices");
        (dir.join(format!("{name}.onnx")), dir.join(format!("{name}.onnx.json")))
    }

    /// Names of the Piper voices present (those with both files).
    pub fn voices(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.root.join("voices")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".onnx")).map(str::to_owned))
            .filter(|name| self.voice(name).1.is_file())
            .collect();
        names.sort();
        names
    }

    pub fn fixture(&self, name: &str) -> PathBuf {
        self.root.join("fixtures").join(name)
    }
}

/// `Ok(path)` when the file exists, else the error that tells the user how to get it.
pub fn require(what: &'static str, path: &Path) -> Result<PathBuf, SpeechError> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(SpeechError::MissingModel { what, path: path.to_path_buf() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stt_models_are_found_by_name_and_missing_ones_say_how_to_get_them() {
        assert_eq!(SttModel::default().name(), DEFAULT_STT_MODEL);
        assert!(SttModel::all().iter().all(|m| SttModel::named(m.name()).ok() == Some(*m)));
        let unknown = SttModel::named("large-v3").unwrap_err().to_string();
        assert!(unknown.contains("large-v3") && unknown.contains("tiny.en") && unknown.contains("models/fetch.sh"));
        let paths = ModelPaths::new("/nonexistent");
        let base = SttModel::named("base-q5_1").unwrap();
        assert_eq!(base.path(&paths), Path::new("/nonexistent/ggml-base-q5_1.bin"));
        let missing = base.require(&paths).unwrap_err().to_string();
        assert!(missing.contains("/nonexistent/ggml-base-q5_1.bin") && missing.contains("models/fetch.sh --base"));
    }
}
