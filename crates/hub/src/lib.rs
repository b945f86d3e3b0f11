//! Models from the Hugging Face hub, fetched the way the hub's own client (`huggingface_hub`)
//! does: the model API for the file list, `resolve/REVISION/FILE` for each file (its
//! `X-Repo-Commit` and `X-Linked-Etag`, then the bytes wherever it redirects), the standard cache
//! layout ([`cache`]) so files already fetched by Python tools are reused, downloads resumed with
//! `Range`, and each file checked against its SHA-256 before it becomes visible.
//!
//! [`Hub::pull`] is what `hearth pull`, Ollama's `POST /api/pull` and `POST /models/pull` run.

pub mod cache;
mod download;
mod fetch;
mod pull;
pub mod reference;
pub mod select;
#[cfg(feature = "testing")]
pub mod testing;

pub use fetch::{install_crypto, Hub, HubSettings, Progress, Pulled};
pub use reference::Reference;
use std::path::PathBuf;
use thiserror::Error;

/// Why a pull failed; each message is meant for the user as it is.
#[derive(Debug, Error)]
pub enum PullError {
    /// The reference does not parse.
    #[error(
        "`{0}` is not a model reference: use OWNER/REPO, OWNER/REPO:QUANT (e.g. Q4_K_M) or OWNER/REPO/FILE.gguf, optionally after hf.co/"
    )]
    BadReference(String),
    /// The hub refused access (401/403).
    #[error("the hub refused access to {repo} ({status}): {}", if *.token { "HF_TOKEN may not read it (a gated repository needs its terms accepted)" } else { "it is private or gated, or does not exist; set HF_TOKEN to a token that may read it" })]
    Unauthorized {
        /// The repository.
        repo: String,
        /// 401 or 403.
        status: u16,
        /// Whether a token was sent.
        token: bool,
    },
    /// No such repository (or revision).
    #[error("the hub has no repository {repo} at revision `{revision}`")]
    NoRepo {
        /// The repository.
        repo: String,
        /// The revision.
        revision: String,
    },
    /// The named file is not in the repository.
    #[error("{repo} has no file {file}")]
    NoSuchFile {
        /// The repository.
        repo: String,
        /// The file.
        file: String,
    },
    /// No file of the asked quantisation.
    #[error("{repo} has no {quant} file; it has: {}", .available.join(", "))]
    NoSuchQuant {
        /// The repository.
        repo: String,
        /// The quantisation asked for.
        quant: String,
        /// Those it has.
        available: Vec<String>,
    },
    /// The repository holds no GGUF model.
    #[error("{0} holds no GGUF file; Hearth serves GGUF models")]
    NoGguf(String),
    /// Parts of a split model are missing from the repository.
    #[error("{repo} lacks some parts of the split model {file}")]
    IncompleteSplit {
        /// The repository.
        repo: String,
        /// The model's name without its part suffix.
        file: String,
    },
    /// Any other answer from the hub.
    #[error("the hub answered {status} for {url}")]
    Status {
        /// The status.
        status: u16,
        /// What was asked (without credentials).
        url: String,
    },
    /// The hub could not be reached, or the connection failed past every retry.
    #[error("cannot reach the hub at {endpoint}: {source}")]
    Network {
        /// The hub's address.
        endpoint: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The hub's answer was not what its protocol says.
    #[error("the hub's answer for {0} is malformed")]
    Malformed(String),
    /// The hub gave no SHA-256 to check a file against.
    #[error("the hub gave no SHA-256 for {0}, so it cannot be verified")]
    Unverifiable(String),
    /// The downloaded bytes are not the file the hub described.
    #[error("{file} failed verification: expected SHA-256 {expected}, got {got}; the download was discarded")]
    ChecksumMismatch {
        /// The file.
        file: String,
        /// The hub's hash.
        expected: String,
        /// The downloaded bytes' hash.
        got: String,
    },
    /// The download ended short past every retry.
    #[error("{file} stopped at {got} of {want} bytes; run the pull again to resume")]
    Truncated {
        /// The file.
        file: String,
        /// Bytes received.
        got: u64,
        /// Bytes expected.
        want: u64,
    },
    /// The disk is full.
    #[error("no space left on the disk for {} (the partial download was removed)", .0.display())]
    DiskFull(PathBuf),
    /// A file could not be written or linked.
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl PullError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::StorageFull {
            PullError::DiskFull(path.to_path_buf())
        } else {
            PullError::Io { path: path.to_path_buf(), source }
        }
    }
}
