//! `/v1/embeddings` types.

use serde::{Deserialize, Serialize};

/// An embeddings request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EmbeddingRequest {
    /// The model id or alias; may be left out when the server has exactly one embedding model.
    #[serde(default)]
    pub model: String,
    /// What to embed.
    pub input: Option<EmbeddingInput>,
    /// `float` (default) or `base64` (little-endian f32 bytes).
    pub encoding_format: Option<String>,
    /// Keep only the first `dimensions` values (then re-normalise).
    pub dimensions: Option<i64>,
    /// End-user id; accepted and ignored.
    pub user: Option<String>,
    /// Scale each embedding to unit length (Hearth extension; default true, as
    /// sentence-transformers and OpenAI do).
    pub normalize: Option<bool>,
    /// Cut inputs longer than the model's window instead of refusing them (Hearth extension;
    /// default false).
    pub truncate: Option<bool>,
    /// How long the model stays loaded after this request (Ollama's `keep_alive`: seconds,
    /// a duration such as `"5m"`, 0 to unload when idle, negative to keep it).
    pub keep_alive: Option<serde_json::Value>,
}

/// The forms `input` can take.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One string.
    Text(String),
    /// Several strings.
    Texts(Vec<String>),
    /// One list of token ids.
    Tokens(Vec<i64>),
    /// Several lists of token ids.
    TokenLists(Vec<Vec<i64>>),
}

/// An embeddings response.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EmbeddingResponse {
    /// Always `list`.
    pub object: String,
    /// One entry per input, in input order.
    pub data: Vec<Embedding>,
    /// The model that answered.
    pub model: String,
    /// Token counts.
    pub usage: EmbeddingUsage,
}

/// One embedding.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Embedding {
    /// Always `embedding`.
    pub object: String,
    /// The input's position in the request.
    pub index: usize,
    /// The vector.
    pub embedding: EmbeddingVector,
}

/// An embedding as floats or as base64 of little-endian f32 bytes.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// `encoding_format: float`.
    Float(Vec<f32>),
    /// `encoding_format: base64`.
    Base64(String),
}

/// Token counts of an embeddings response.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EmbeddingUsage {
    /// Tokens evaluated.
    pub prompt_tokens: u32,
    /// Same as `prompt_tokens`.
    pub total_tokens: u32,
}
