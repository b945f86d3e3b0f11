//! llama.cpp started once per process (with its backend modules, in a `dynamic-backends`
//! build), and a model file read with it.

use hearth_engine::error::LoadError;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use std::sync::OnceLock;

/// llama.cpp's backend, started by the first model loaded (`None`: it failed to start).
static BACKEND: OnceLock<Option<LlamaBackend>> = OnceLock::new();

pub(crate) fn backend() -> Result<&'static LlamaBackend, LoadError> {
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            #[cfg(feature = "dynamic-backends")]
            load_backend_modules();
            LlamaBackend::init().map_err(|e| tracing::error!(error = %e, "llama.cpp could not be initialised")).ok()
        })
        .as_ref()
        .ok_or(LoadError::Init)
}

/// With `dynamic-backends`, ggml's backends (the CPU variants, Vulkan, CUDA) are modules
/// (`libggml-*.so`) loaded before llama.cpp starts: from the folder of this program (where
/// `scripts/package` puts them beside `hearth`), else from where the build left them.
#[cfg(feature = "dynamic-backends")]
fn load_backend_modules() {
    let beside = std::env::current_exe().ok().and_then(|p| p.parent().map(std::path::Path::to_path_buf));
    match beside {
        Some(dir)
            if std::fs::read_dir(&dir).is_ok_and(|mut d| {
                d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libggml-")))
            }) =>
        {
            if dir.to_str().is_some() {
                llama_cpp_2::llama_backend::load_backends_from_path(&dir);
            }
        }
        _ => llama_cpp_2::llama_backend::load_backends(),
    }
}

/// Reads the GGUF at `path` with `params`; the library's reason goes to the log.
pub(crate) fn load_model(path: &std::path::Path, params: &LlamaModelParams) -> Result<LlamaModel, LoadError> {
    let backend = backend()?;
    if !path.is_file() {
        return Err(LoadError::Missing);
    }
    LlamaModel::load_from_file(backend, path, params).map_err(|e| {
        tracing::warn!(path = %path.display(), error = %e, "llama.cpp could not read the model file");
        LoadError::Unreadable
    })
}
