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
//! - [`conversations`]: conversations kept for the UI; [`ui`]: the embedded browser UI at `/`;
//! - [`middleware`]: request ids, request metrics, the summary log line; [`metrics`]: names;
//! - [`validate`]: wire -> engine; [`error`], [`extract`]: OpenAI-shaped errors.

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
pub mod logprobs;
pub mod metrics;
pub mod middleware;
pub mod models;
pub mod openapi;
pub mod rag;
pub mod rerank;
pub mod shutdown;
pub mod sse;
pub mod state;
pub mod structured;
pub mod tokenize;
pub mod tools;
pub mod ui;
pub mod validate;

pub use error::ApiError;
pub use state::{AppState, Limits};

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::routing::{delete, get, patch, post, MethodRouter};
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
    /// The browser UI's static files: always open (they hold nothing private; the UI asks
    /// for a key when the API answers 401).
    Ui,
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
    route("POST", "/collections"),
    route("GET", "/collections"),
    route("GET", "/collections/{name}"),
    route("DELETE", "/collections/{name}"),
    route("POST", "/collections/{name}/documents"),
    route("GET", "/collections/{name}/documents"),
    route("GET", "/collections/{name}/documents/{id}"),
    route("DELETE", "/collections/{name}/documents/{id}"),
    route("POST", "/collections/{name}/search"),
    route("GET", "/jobs/{id}"),
    route("POST", "/api/v1/generate"),
    route("POST", "/api/v1/generate/upload"),
    route("GET", "/api/v1/sessions"),
    route("GET", "/api/v1/sessions/{id}"),
    route("DELETE", "/api/v1/sessions/{id}"),
    route("GET", "/api/v1/conversations"),
    route("POST", "/api/v1/conversations"),
    route("GET", "/api/v1/conversations/{id}"),
    route("PATCH", "/api/v1/conversations/{id}"),
    route("DELETE", "/api/v1/conversations/{id}"),
    route("GET", "/metrics"),
    open(Access::Probe, "/health"),
    open(Access::Probe, "/health/live"),
    open(Access::Probe, "/health/ready"),
    open(Access::Docs, "/openapi.json"),
    open(Access::Docs, "/docs"),
    open(Access::Docs, "/docs/"),
    open(Access::Docs, "/docs/{*rest}"),
    open(Access::Ui, "/"),
    open(Access::Ui, "/assets/{*file}"),
    open(Access::Ui, "/favicon.svg"),
];

/// The handler of a route.
fn handler(r: &Route) -> MethodRouter<AppState> {
    match (r.method, r.path) {
        ("POST", "/v1/chat/completions") => post(chat::chat_completions),
        ("POST", "/v1/completions") => post(completions::completions),
        ("POST", "/v1/embeddings") | ("POST", "/embeddings") => post(embeddings::embeddings),
        ("POST", "/v1/rerank") | ("POST", "/rerank") => post(rerank::rerank),
        ("POST", "/tokenize") => post(tokenize::tokenize),
        ("POST", "/detokenize") => post(tokenize::detokenize),
        ("GET", "/v1/models") => get(models::list_models),
        ("GET", "/v1/models/{id}") => get(models::get_model),
        ("POST", "/models/load") => post(lifecycle::load),
        ("POST", "/models/unload") => post(lifecycle::unload),
        ("GET", "/models/loaded") => get(lifecycle::loaded),
        ("GET", "/metrics") => get(health::metrics),
        ("GET", "/health") => get(health::health),
        ("GET", "/health/live") => get(health::live),
        ("GET", "/health/ready") => get(health::ready),
        ("GET", "/openapi.json") => get(openapi::openapi_json),
        ("GET", "/docs") => get(openapi::docs_redirect),
        ("GET", "/docs/") => get(openapi::docs_index),
        ("GET", "/docs/{*rest}") => get(openapi::docs_asset),
        ("POST", "/collections") => post(rag::routes::create_collection),
        ("GET", "/collections") => get(rag::routes::list_collections),
        ("GET", "/collections/{name}") => get(rag::routes::get_collection),
        ("DELETE", "/collections/{name}") => delete(rag::routes::delete_collection),
        ("POST", "/collections/{name}/documents") => post(rag::routes::upload),
        ("GET", "/collections/{name}/documents") => get(rag::routes::list_documents),
        ("GET", "/collections/{name}/documents/{id}") => get(rag::routes::get_document),
        ("DELETE", "/collections/{name}/documents/{id}") => delete(rag::routes::delete_document),
        ("POST", "/collections/{name}/search") => post(rag::routes::search),
        ("GET", "/jobs/{id}") => get(rag::routes::get_job),
        ("POST", "/api/v1/generate") => post(rag::generate::generate),
        ("POST", "/api/v1/generate/upload") => post(rag::generate::generate_upload),
        ("GET", "/api/v1/sessions") => get(rag::generate::list_sessions),
        ("GET", "/api/v1/sessions/{id}") => get(rag::generate::get_session),
        ("DELETE", "/api/v1/sessions/{id}") => delete(rag::generate::delete_session),
        ("GET", "/api/v1/conversations") => get(conversations::list),
        ("POST", "/api/v1/conversations") => post(conversations::create),
        ("GET", "/api/v1/conversations/{id}") => get(conversations::get),
        ("PATCH", "/api/v1/conversations/{id}") => patch(conversations::update),
        ("DELETE", "/api/v1/conversations/{id}") => delete(conversations::delete),
        ("GET", "/") => get(ui::index),
        ("GET", "/assets/{*file}") => get(ui::file),
        ("GET", "/favicon.svg") => get(ui::favicon),
        // A route listed without a handler answers 404 like an unknown one; tests request
        // every route, so this does not go unnoticed.
        _ => get(not_found).post(not_found).delete(not_found).patch(not_found),
    }
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_string())
}

/// The application's router. Layers, outermost first: request id, metrics and log line; CORS;
/// API key and rate limit; request timeout; body size limit.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    let upload_limit = state.rag.as_ref().map_or(0, |r| r.max_upload_bytes);
    for r in ROUTES {
        let mut h = handler(r);
        if matches!(r.path, "/collections/{name}/documents" | "/api/v1/generate/upload") && r.method == "POST" {
            // Uploads have their own limit (a multipart body holds the files plus framing).
            h = h.layer(DefaultBodyLimit::max(upload_limit.saturating_mul(4).max(state.limits.max_body_bytes)));
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
        .layer(axum::middleware::from_fn(middleware::observe))
        .with_state(state)
}
