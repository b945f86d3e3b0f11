//! `/v1/models` objects.

use serde::{Deserialize, Serialize};

/// One model, as `/v1/models` lists it, with Hearth's extra metadata under `meta`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ModelObject {
    /// The model id (GGUF file stem).
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// File modification time, seconds since the epoch.
    pub created: u64,
    /// Always `hearth`.
    pub owned_by: String,
    /// Hearth's metadata on the model (non-standard; OpenAI clients ignore it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

/// The list `/v1/models` returns.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// The models.
    pub data: Vec<ModelObject>,
}

/// `POST /models/load` and `POST /models/unload` (Hearth's model lifecycle API).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ModelLifecycleRequest {
    /// Model id or alias.
    #[serde(default)]
    pub model: String,
    /// For a load: how long it stays loaded after its last use (as a request's `keep_alive`).
    pub keep_alive: Option<serde_json::Value>,
}

/// The answer to `POST /models/load`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ModelLoaded {
    /// The model's id.
    pub model: String,
    /// Always true (a model that does not load is an error).
    pub loaded: bool,
    /// Its estimated memory: file size plus KV cache.
    pub memory_bytes: u64,
    /// Seconds its load took (0 when it was loaded already).
    pub load_seconds: f64,
}

/// The answer to `POST /models/unload`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ModelUnloaded {
    /// The model's id.
    pub model: String,
    /// Whether it was loaded (unloading a model that is not is not an error).
    pub unloaded: bool,
}

/// A loaded model in `GET /models/loaded`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct LoadedModel {
    /// Model id.
    pub id: String,
    /// `causal` or `embedding`.
    pub kind: String,
    /// Estimated memory: file plus KV cache.
    pub memory_bytes: u64,
    /// Last use, seconds since the epoch.
    pub last_used: u64,
    /// Seconds until it is unloaded if unused; absent when it is not unloaded by time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<f64>,
    /// Sequences or embedding requests running now.
    pub active_requests: usize,
    /// Requests waiting for the worker.
    pub waiting_requests: usize,
    /// Seconds loading took.
    pub load_seconds: f64,
    /// `ready`, or `failed` for a model whose worker process crashed and that has not been
    /// loaded again (its next request loads it).
    pub status: String,
    /// Its worker process (process isolation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The worker process's resident memory, measured (process isolation); the memory budget
    /// counts the larger of this and `memory_bytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
    /// Crashes of its worker since the server started.
    pub crashes: u64,
    /// How its worker last ended, when it crashed (`killed by signal 6`, `exit code 1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_crash: Option<String>,
    /// Its layers on a GPU.
    pub gpu_layers: u32,
    /// Its layers in all (the output layer counted).
    pub layers_total: u32,
    /// Device memory it took, in bytes.
    pub device_bytes: u64,
    /// The GPU devices it uses (`Vulkan0`, `CUDA0`).
    pub devices: Vec<String>,
    /// Why it runs on the CPU although a GPU is present (`auto` fell back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_fallback: Option<String>,
}

/// `GET /models/loaded`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct LoadedModels {
    /// Always `list`.
    pub object: String,
    /// Loaded models, by id.
    pub data: Vec<LoadedModel>,
    /// Sum of their estimated memory.
    pub memory_bytes: u64,
}
