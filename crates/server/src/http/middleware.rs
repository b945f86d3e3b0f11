//! The layer every request passes: a request id (the client's `x-request-id`, or a new one,
//! echoed back), a tracing span carrying it, the request metrics, and one summary log line.

use crate::http::error::{shaped, ApiError, Said};
use crate::http::metrics::{self, metrics};
use crate::http::route::{Matched, Protocol};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

/// The model that served a request (a response extension set by handlers, for metrics/logs).
#[derive(Debug, Clone)]
pub struct ServedModel(pub String);

/// What a finished generation or embedding request did (a response extension; streams log it
/// themselves when they end).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
    /// Milliseconds to the first token.
    pub ttft_ms: f64,
    /// Generated tokens per second.
    pub tokens_per_second: f64,
    /// Why generation ended (empty for embeddings).
    pub finish: &'static str,
}

impl Summary {
    /// The one summary line of a request, in the current (request) span.
    pub fn log(&self, method: &str, endpoint: &str, status: u16, model: &str, ms: f64) {
        tracing::info!(
            method,
            endpoint,
            status,
            model,
            prompt_tokens = self.prompt_tokens,
            completion_tokens = self.completion_tokens,
            ttft_ms = format!("{:.1}", self.ttft_ms),
            tokens_per_second = format!("{:.1}", self.tokens_per_second),
            finish = self.finish,
            ms = format!("{ms:.1}"),
            "request"
        );
    }
}

/// The header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

/// The client's id if it is short printable ASCII, else a new one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| crate::http::ids::new_id("req"), str::to_string)
}

/// The middleware.
pub async fn observe(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    // The route's template, or `other` (bounded cardinality).
    let endpoint = Matched::of(&req).map_or("other", |r| r.path);
    let span = tracing::info_span!("request", id = %id);
    let mut res = next.run(req).instrument(span.clone()).await;
    let status = res.status().as_u16();
    let model = res.extensions().get::<ServedModel>().map(|m| m.0.clone()).unwrap_or_default();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let m = metrics();
    m.inc(metrics::REQUESTS, &[("endpoint", endpoint), ("model", &model), ("status", &status.to_string())], 1);
    m.observe(metrics::REQUEST_SECONDS, &[("endpoint", endpoint)], ms / 1000.0);
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    let streaming = res.headers().get("content-type").is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(b"text/event-stream") || v.starts_with(b"application/x-ndjson")
    });
    if !streaming && endpoint != "/metrics" && !endpoint.starts_with("/health") {
        let summary = res.extensions().get::<Summary>().cloned().unwrap_or_default();
        span.in_scope(|| summary.log(method.as_str(), endpoint, status, &model, ms));
    }
    res
}

/// The layer that gives every error of a route (the handler's, and the auth, limit and
/// timeout layers') its protocol's shape: Ollama's `{"error": "..."}`, Anthropic's
/// `{"type": "error", ...}`; OpenAI's everywhere else.
pub async fn in_protocol(req: Request, next: Next) -> Response {
    let protocol = Matched::of(&req).map_or(Protocol::OpenAi, |r| r.protocol);
    let path = req.uri().path().to_string();
    let mut res = next.run(req).await;
    let json = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if res.extensions().get::<Said>().is_none() && res.status().is_client_error() && !json {
        res = rejection(res, path).await;
    }
    let said = res.extensions().get::<Said>().cloned();
    let (Some(said), false) = (said, protocol == Protocol::OpenAi) else { return res };
    let (mut parts, _) = res.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let json = shaped(protocol, &said);
    Response::from_parts(parts, Body::from(serde_json::to_vec(&json).unwrap_or_default()))
}

/// An error answered by an extractor of axum's own (a path segment that does not parse, a
/// multipart body without a boundary): its plain text becomes the message of an error in the
/// API's shape.
async fn rejection(res: Response, path: String) -> Response {
    let status = res.status();
    let text = axum::body::to_bytes(res.into_body(), 16 << 10).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_string();
    let err = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound(path),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(message),
        _ => ApiError::BadRequest { message, param: None, code: "invalid_request" },
    };
    err.into_response()
}

/// Ends a request that runs past `--request-timeout` (until its response head; a stream
/// enforces the same deadline itself).
pub async fn timeout(State(limit): State<std::time::Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// CORS for the configured origins; none configured = no CORS headers (same origin only).
pub fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let layer = CorsLayer::new().allow_origin(allow);
    if origins.is_empty() {
        return layer;
    }
    layer
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderName::from_static(REQUEST_ID),
            axum::http::HeaderName::from_static("x-api-key"),
            axum::http::HeaderName::from_static("anthropic-version"),
        ])
        .expose_headers([axum::http::HeaderName::from_static(REQUEST_ID)])
}
