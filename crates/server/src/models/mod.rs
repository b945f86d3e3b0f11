//! The models: listing (`/v1/models`), loading and unloading, and pulling from the hub
//! (Ollama's `/api/pull` and Hearth's pull jobs).

pub mod lifecycle;
pub mod list;
pub mod pull;
pub mod pull_jobs;
