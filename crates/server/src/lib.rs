//! Hearth's HTTP layer: the axum [`Router`], handlers, [`ApiError`] and SSE framing.
//!
//! Handlers extract and validate the wire request ([`hearth_protocol`]), turn it into the
//! engine's validated types, submit it to a model's worker and answer with its events. This
//! crate never touches llama.cpp; the engine never sees axum.
//!
//! - [`chat`], [`completions`]: generation endpoints; [`generate`]: their shared path;
//! - [`embeddings`], [`rerank`], [`tokenize`]: the embedding worker's endpoints and tokenizers;
//! - [`models`]: model listing; [`lifecycle`]: load/unload; [`health`]: probes and `/metrics`;
//! - [`openapi`]: `/openapi.json` and Swagger UI at `/docs/`;
//! - [`middleware`]: request ids, request metrics, the summary log line; [`metrics`]: names;
//! - [`validate`]: wire -> engine; [`error`], [`extract`]: OpenAI-shaped errors.

pub mod auth;
pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod error;
pub mod extract;
pub mod generate;
pub mod health;
pub mod lifecycle;
pub mod metrics;
pub mod middleware;
pub mod models;
pub mod openapi;
pub mod rerank;
pub mod shutdown;
pub mod state;
pub mod tokenize;
pub mod validate;

pub use error::ApiError;
pub use state::{AppState, Limits};

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

/// `system_fingerprint` of every response.
pub const FINGERPRINT: &str = concat!("hearth-", env!("CARGO_PKG_VERSION"));

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// An API key, when keys are configured.
    Key,
    /// A probe: open when `--public-health` (probes send no key).
    Probe,
    /// API documentation: open when `--public-docs`.
    Docs,
}

/// One route of the API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path template.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

const fn route(method: &'static str, path: &'static str) -> Route {
    Route { method, path, access: Access::Key }
}

const fn open(access: Access, path: &'static str) -> Route {
    Route { method: "GET", path, access }
}

/// Every route; the router is built from this list, so nothing is served that the auth layer
/// and the tests do not know of.
pub const ROUTES: &[Route] = &[
    route("POST", "/v1/chat/completions"),
    route("POST", "/v1/completions"),
    route("POST", "/v1/embeddings"),
    route("POST", "/embeddings"),
    route("POST", "/v1/rerank"),
    route("POST", "/rerank"),
    route("POST", "/tokenize"),
    route("POST", "/detokenize"),
    route("GET", "/v1/models"),
    route("GET", "/v1/models/{id}"),
    route("POST", "/models/load"),
    route("POST", "/models/unload"),
    route("GET", "/models/loaded"),
    route("GET", "/metrics"),
    open(Access::Probe, "/health"),
    open(Access::Probe, "/health/live"),
    open(Access::Probe, "/health/ready"),
    open(Access::Docs, "/openapi.json"),
    open(Access::Docs, "/docs"),
    open(Access::Docs, "/docs/"),
    open(Access::Docs, "/docs/{*rest}"),
];

/// The handler of a route.
fn handler(r: &Route) -> MethodRouter<AppState> {
    match r.path {
        "/v1/chat/completions" => post(chat::chat_completions),
        "/v1/completions" => post(completions::completions),
        "/v1/embeddings" | "/embeddings" => post(embeddings::embeddings),
        "/v1/rerank" | "/rerank" => post(rerank::rerank),
        "/tokenize" => post(tokenize::tokenize),
        "/detokenize" => post(tokenize::detokenize),
        "/v1/models" => get(models::list_models),
        "/v1/models/{id}" => get(models::get_model),
        "/models/load" => post(lifecycle::load),
        "/models/unload" => post(lifecycle::unload),
        "/models/loaded" => get(lifecycle::loaded),
        "/metrics" => get(health::metrics),
        "/health" => get(health::health),
        "/health/live" => get(health::live),
        "/health/ready" => get(health::ready),
        "/openapi.json" => get(openapi::openapi_json),
        "/docs" => get(openapi::docs_redirect),
        "/docs/" => get(openapi::docs_index),
        "/docs/{*rest}" => get(openapi::docs_asset),
        // A route listed without a handler answers 404 like an unknown one; tests request
        // every route, so this does not go unnoticed.
        _ => get(not_found).post(not_found),
    }
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

/// The application's router. Layers, outermost first: request id, metrics and log line; CORS;
/// API key and rate limit; request timeout; body size limit.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for r in ROUTES {
        router = router.route(r.path, handler(r));
    }
    let cors = middleware::cors(&state.cors_origins);
    router
        .fallback(not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_key))
        .layer(cors)
        .layer(axum::middleware::from_fn(middleware::observe))
        .with_state(state)
}
