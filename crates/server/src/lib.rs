//! Hearth's HTTP layer: the axum [`Router`], handlers, [`ApiError`] and SSE framing.
//!
//! Handlers extract and validate the wire request ([`hearth_protocol`]), turn it into the
//! engine's validated types, submit it to a model's worker and answer with its events. This
//! crate never touches llama.cpp; the engine never sees axum.
//!
//! - [`routes`]: the route table every other part reads;
//! - [`chat`], [`completions`]: generation endpoints; [`generate`]: their shared path;
//! - [`ollama`], [`anthropic`], [`responses`]: Ollama's API, Anthropic's Messages and OpenAI's
//!   Responses, translated into the same chat request and out of the same events;
//! - [`embeddings`], [`rerank`], [`tokenize`]: the embedding worker's endpoints and tokenizers;
//! - [`models`]: model listing; [`lifecycle`]: load/unload; [`health`]: probes and `/metrics`;
//! - [`openapi`]: `/openapi.json` and Swagger UI at `/docs/`;
//! - [`conversations`]: conversations kept for the UI; [`ui`]: the embedded browser UI at `/`;
//! - [`middleware`]: request ids, request metrics, the summary log line; [`metrics`]: names;
//! - [`validate`]: wire -> engine; [`error`], [`extract`]: OpenAI-shaped errors.

pub mod anthropic;
pub mod auth;
pub mod chat;
mod chat_stream;
pub mod completions;
pub mod conversations;
pub mod embeddings;
pub mod error;
pub mod extract;
pub mod generate;
pub mod health;
pub mod lifecycle;
pub mod listen;
pub mod logprobs;
pub mod metrics;
pub mod middleware;
pub mod models;
pub mod ollama;
pub mod openapi;
pub mod owner;
pub mod pull;
pub mod quota;
pub mod rag;
pub mod refused;
pub mod rerank;
pub mod responses;
pub mod routes;
pub mod shutdown;
pub mod share;
pub mod sse;
pub mod state;
pub mod structured;
pub mod tokenize;
pub mod tools;
pub mod ui;
pub mod validate;

pub use error::ApiError;
pub use state::{AppState, Limits};

pub use routes::{Access, Protocol, Route, ROUTES};

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::Router;

/// `system_fingerprint` of every response.
pub const FINGERPRINT: &str = concat!("hearth-", env!("CARGO_PKG_VERSION"));

/// What an upload's body may hold beyond its files: multipart framing and text fields.
const UPLOAD_FORM_SLACK: usize = 1 << 20;

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

/// The application's router. Layers, outermost first: request id, metrics and log line; CORS;
/// API key and rate limit; request timeout; body size limit.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    let upload_limit = state.rag.as_ref().map_or(0, |r| r.max_upload_bytes);
    for r in ROUTES {
        let mut h = (r.handler)();
        if r.upload {
            // Uploads have their own limit (a multipart body holds the files plus framing).
            h = h.layer(DefaultBodyLimit::max(
                upload_limit.saturating_add(UPLOAD_FORM_SLACK).max(state.limits.max_body_bytes),
            ));
        }
        router = router.route(r.path, h);
    }
    let cors = middleware::cors(&state.cors_origins);
    router
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_key))
        .layer(cors)
        .layer(axum::middleware::from_fn(error::in_protocol))
        .layer(axum::middleware::from_fn(middleware::observe))
        .with_state(state)
}
