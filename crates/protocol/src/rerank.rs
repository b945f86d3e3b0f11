//! `/v1/rerank` types, in the shape Jina, Cohere and llama-server share.

use serde::{Deserialize, Serialize};

/// A rerank request: score each document's relevance to the query.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RerankRequest {
    /// The reranker's id or alias; may be left out when the server has exactly one reranker.
    #[serde(default)]
    pub model: String,
    /// The query.
    pub query: Option<String>,
    /// The documents (`texts` is accepted too, as text-embeddings-inference names it).
    #[serde(alias = "texts")]
    pub documents: Option<Vec<RerankDocument>>,
    /// Return only the best `top_n` results.
    pub top_n: Option<i64>,
    /// Include each document's text in its result (default false).
    pub return_documents: Option<bool>,
    /// Cut (query, document) pairs longer than the model's window (default true: documents
    /// are often longer than a reranker's window).
    pub truncate: Option<bool>,
    /// How long the model stays loaded after this request (Ollama's `keep_alive`: seconds,
    /// a duration such as `"5m"`, 0 to unload when idle, negative to keep it).
    pub keep_alive: Option<serde_json::Value>,
}

/// A document: a string, or an object with `text`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum RerankDocument {
    /// Plain text.
    Text(String),
    /// `{"text": ...}`.
    Object {
        /// The text.
        text: String,
    },
}

impl RerankDocument {
    /// The document's text.
    pub fn text(&self) -> &str {
        match self {
            Self::Text(t) | Self::Object { text: t } => t,
        }
    }
}

/// A rerank response.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RerankResponse {
    /// `rerank-...`.
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// Results, most relevant first.
    pub results: Vec<RerankResult>,
    /// Token counts.
    pub usage: RerankUsage,
}

/// One scored document.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RerankResult {
    /// The document's position in the request.
    pub index: usize,
    /// Relevance in (0, 1): the sigmoid of the cross-encoder's logit.
    pub relevance_score: f32,
    /// The document, when `return_documents` was set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<RerankDocumentText>,
}

/// A returned document.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RerankDocumentText {
    /// Its text.
    pub text: String,
}

/// Token counts of a rerank response.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RerankUsage {
    /// Tokens evaluated (every query + document pair).
    pub prompt_tokens: u32,
    /// Same as `prompt_tokens`.
    pub total_tokens: u32,
}
