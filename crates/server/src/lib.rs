//! Hearth's HTTP layer: the axum [`Router`], handlers, [`ApiError`] and SSE framing.
//!
//! Handlers extract and validate the wire request ([`hearth_protocol`]), turn it into the
//! engine's validated types, submit it to a model's worker and answer with its events. This
//! crate never touches llama.cpp; the engine never sees axum.
//!
//! - [`chat`], [`completions`]: generation endpoints; [`generate`]: their shared path;
//! - [`embeddings`], [`rerank`], [`tokenize`]: the embedding worker's endpoints and tokenizers;
//! - [`models`]: model listing and health;
//! - [`validate`]: wire -> engine; [`error`], [`extract`]: OpenAI-shaped errors.

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod error;
pub mod extract;
pub mod generate;
pub mod models;
pub mod rerank;
pub mod state;
pub mod tokenize;
pub mod validate;

pub use error::ApiError;
pub use state::{AppState, Limits};

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::routing::{get, post};
use axum::Router;

/// `system_fingerprint` of every response.
pub const FINGERPRINT: &str = concat!("hearth-", env!("CARGO_PKG_VERSION"));

/// Largest request body accepted (long prompts fit; anything larger is a 413).
const BODY_LIMIT: usize = 8 << 20;

/// The application's router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/completions", post(completions::completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/embeddings", post(embeddings::embeddings))
        .route("/v1/rerank", post(rerank::rerank))
        .route("/rerank", post(rerank::rerank))
        .route("/tokenize", post(tokenize::tokenize))
        .route("/detokenize", post(tokenize::detokenize))
        .route("/v1/models", get(models::list_models))
        .route("/v1/models/{id}", get(models::get_model))
        .route("/health", get(models::health))
        .fallback(|uri: Uri| async move { ApiError::NotFound(uri.path().to_string()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
