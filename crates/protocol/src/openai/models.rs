//! `/v1/models` objects.

use serde::{Deserialize, Serialize};

/// One model, as `/v1/models` lists it, with Hearth's extra metadata under `meta`.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// The models.
    pub data: Vec<ModelObject>,
}
