//! Hearth's HTTP layer: the axum [`Router`] over the engine, in layers; each imports only from
//! the layers below it.
//!
//! - [`http`]: the edge: the route a request matched ([`http::route::Matched`]), errors in each
//!   protocol's shape, extractors, keys and rate limits, request ids, metrics, the accept loop;
//! - [`services`]: what handlers share through [`AppState`] (shares, ownership, quotas, pull
//!   jobs, retrieval's state);
//! - [`pipeline`]: one protocol-neutral path from a wire request to the engine and back
//!   (validation, structured output, tools, grounding, admission, streams);
//! - [`openai`], [`ollama`], [`anthropic`], [`responses`]: the protocols, each translating into
//!   the pipeline and framing its events;
//! - [`retrieval`], [`conversations`], [`models`], [`health`], [`openapi`], [`ui`]: Hearth's own
//!   endpoints;
//! - [`route`], [`routes`]: the route table, which names every handler, at the top.
//!
//! This crate never touches llama.cpp; the engine never sees axum.

pub mod anthropic;
pub mod conversations;
pub mod health;
pub mod http;
pub mod models;
pub mod ollama;
pub mod openai;
pub mod openapi;
pub mod pipeline;
pub mod responses;
pub mod retrieval;
pub mod route;
pub mod routes;
pub mod services;
pub mod shutdown;
pub mod ui;

pub use http::error::ApiError;
pub use http::limits::Limits;
pub use services::state::AppState;

pub use http::route::{Access, Protocol};
pub use route::Route;
pub use routes::ROUTES;

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

/// The application's router. Layers, outermost first: the route found once ([`routes::resolve`]);
/// request id, metrics and log line; errors in the route's protocol's shape; CORS;
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
    let cors = http::middleware::cors(&state.cors_origins);
    router
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.limits.request_timeout, http::middleware::timeout))
        .layer(axum::middleware::from_fn_with_state(state.keys.clone(), http::auth::require_key))
        .layer(cors)
        .layer(axum::middleware::from_fn(http::middleware::in_protocol))
        .layer(axum::middleware::from_fn(http::middleware::observe))
        .layer(axum::middleware::from_fn(routes::resolve))
        .with_state(state)
}
