//! The process-wide ONNX Runtime. `ort` is built with `load-dynamic`, so nothing is
//! downloaded at build time; the library comes from `models/lib` (PyPI's `onnxruntime`
//! wheel) and is loaded once, on first use, by `ensure_loaded`.

use std::path::Path;
use std::sync::OnceLock;

use super::SpeechError;
use super::models::require;

static LOADED: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Loads `libonnxruntime.so` and builds the global environment, once per process; later calls
/// return the first call's result (the runtime cannot be swapped once loaded). The environment
/// is returned because `Session::builder` needs it.
///
/// Telemetry is switched off twice: `ORT_DISABLE_TELEMETRY=1` (read by recent Linux builds
/// before any API call; `main` sets it before starting threads) and `DisableTelemetryEvents`
/// through `with_telemetry(false)`. A gateway makes no outbound call it was not asked to make.
pub fn ensure_loaded(library: &Path) -> Result<&'static ort::environment::Environment, SpeechError> {
    let result = LOADED.get_or_init(|| {
        let library = require("ONNX Runtime library", library).map_err(|e| e.to_string())?;
        let builder = ort::init_from(&library).map_err(|e| format!("loading {}: {e}", library.display()))?;
        // Sessions bring their own intra-op threads (sized per pool), so the environment
        // needs no global pool.
        // The environment must outlive every session: it lives in this static until the
        // process exits.
        builder
            .with_name("callcenter")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("creating the environment: {e}"))
    });
    result.as_ref().map_err(|e| SpeechError::Onnx(e.clone()))
}
