//! `/models/pull` (Hearth's own): a model pulled from the Hugging Face hub as a job whose
//! progress a client polls, for the browser UI (Ollama's `POST /api/pull` streams instead).

use serde::{Deserialize, Serialize};

/// `POST /models/pull`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PullJobRequest {
    /// What to pull: `hf.co/OWNER/REPO[:QUANT]`, `OWNER/REPO[:QUANT]` (default Q4_K_M) or
    /// `OWNER/REPO/FILE.gguf`, optionally with `@REVISION`.
    #[serde(default)]
    pub model: String,
}

/// Where a pull job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PullStatus {
    /// Downloading or verifying.
    Running,
    /// The model is in the models folder and served.
    Done,
    /// It stopped on an error (`error` says which); nothing half-done is served.
    Failed,
    /// Cancelled by `DELETE /models/pull/{id}`; what was fetched stays for a resume.
    Cancelled,
}

/// A pull job as `GET /models/pull/{id}` shows it.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PullJob {
    /// Job id.
    pub id: String,
    /// Always `model.pull`.
    pub object: String,
    /// The reference asked for.
    pub model: String,
    /// Where it is.
    pub status: PullStatus,
    /// The file being fetched (a split model has several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Bytes on disk so far, over all files (cached ones count whole).
    pub completed: u64,
    /// Bytes in all, once the files are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Download speed since the job started, bytes per second (absent until bytes arrive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_second: Option<f64>,
    /// Seconds left at that speed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<f64>,
    /// The model's id when done (chat with it by this id or by the reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Why another quantisation than the one asked for was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<PullFailure>,
    /// Unix seconds when it started.
    pub created_at: u64,
    /// Unix seconds when it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
}

/// A failed pull's reason.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PullFailure {
    /// Machine-readable: `model_not_found`, `hub_refused`, `hub_error`, `download_failed`,
    /// `disk_full`, `internal_error`.
    pub code: String,
    /// What happened, for a person.
    pub message: String,
}

/// `GET /models/pull`: recent pull jobs, newest first.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PullJobs {
    /// Always `list`.
    pub object: String,
    /// The jobs.
    pub data: Vec<PullJob>,
}
