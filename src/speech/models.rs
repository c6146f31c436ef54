//! Where the model files live. `models/fetch.sh` lays them out; a user may point
//! `--models-dir` (env `CALLCENTER_MODELS_DIR`) elsewhere, and may add Piper voices
//! (`voices/NAME.onnx` + `voices/NAME.onnx.json`).

use std::path::{Path, PathBuf};

use super::SpeechError;

/// The default voice `models/fetch.sh` installs.
pub const DEFAULT_VOICE: &str = "en_US-joe-medium";

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
