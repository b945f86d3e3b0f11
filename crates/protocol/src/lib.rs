//! Wire types for the HTTP APIs Hearth speaks.
//!
//! This crate owns the JSON shapes only: it does no I/O and knows nothing about the engine.
//!
//! - [`openai`]: the OpenAI-compatible API (`/v1/chat/completions`, `/v1/completions`,
//!   `/v1/embeddings`, `/v1/models`, error bodies);
//! - [`ollama`]: Ollama's API (`/api/chat`, `/api/generate`, `/api/tags`, ...);
//! - [`anthropic`]: Anthropic's Messages (`/v1/messages`);
//! - [`responses`]: OpenAI's Responses (`/v1/responses`);
//! - [`conversations`]: `/api/v1/conversations` (kept for the browser UI);
//! - [`pull`]: `/models/pull` (models pulled from the hub as jobs);
//! - [`rerank`]: `/v1/rerank` (Jina/Cohere shape);
//! - [`tokenize`]: `/tokenize` and `/detokenize` (llama-server shape).
//!
//! ```
//! use hearth_protocol::openai::ChatCompletionRequest;
//! let req: ChatCompletionRequest =
//!     serde_json::from_str(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
//! assert_eq!(req.messages.len(), 1);
//! ```

pub mod anthropic;
pub mod conversations;
pub mod ollama;
pub mod openai;
pub mod pull;
pub mod rerank;
pub mod responses;
pub mod tokenize;
