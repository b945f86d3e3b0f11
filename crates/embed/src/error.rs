//! What can go wrong in the library.

use hearth_engine::EngineError;
use std::path::PathBuf;
use thiserror::Error;

/// What can go wrong in the library.
#[derive(Debug, Error)]
pub enum EmbedError {
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The file is not a readable GGUF model.
    #[error("cannot read model {path}: {reason}")]
    BadModelFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The model generates text; it has no embeddings.
    #[error("model `{0}` is not an embedding model")]
    NotAnEmbeddingModel(String),
    /// No model with this id is loaded (or no model at all, for the default).
    #[error("no model `{0}` is loaded")]
    NotLoaded(String),
    /// The engine refused or failed the call (too long input, overload, decode failure).
    #[error(transparent)]
    Engine(#[from] EngineError),
}
