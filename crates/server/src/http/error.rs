//! `ApiError`: every failure a client can see, mapped to a status and OpenAI's error body.

use crate::http::refused::{self, Busy, Feature, Missing};
use crate::http::route::Protocol;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hearth_engine::error::LoadError;
use hearth_engine::EngineError;
use hearth_protocol::openai::{ErrorBody, ErrorDetail};
use hearth_rag::store::StoreError;

/// An error answered to a client.
#[derive(Debug)]
pub enum ApiError {
    /// From the engine.
    Engine(EngineError),
    /// A malformed or unsupported request.
    BadRequest {
        /// What is wrong.
        message: String,
        /// The field at fault.
        param: Option<String>,
        /// Machine-readable code.
        code: &'static str,
    },
    /// The body is not JSON as the endpoint expects (`Content-Type`).
    UnsupportedMediaType(String),
    /// The body is larger than the server accepts.
    PayloadTooLarge,
    /// No such route.
    NotFound(String),
    /// The route exists, but not for this method.
    MethodNotAllowed,
    /// Too many requests in flight at once.
    TooManyRequests,
    /// The key's quota on what it keeps in the store would be passed.
    Quota {
        /// What is counted.
        what: &'static str,
        /// The key's quota.
        limit: u64,
    },
    /// This key holds its whole share of a pool every key draws from.
    KeyShare {
        /// The pool (`requests in flight`, `uploads`, `queued documents`).
        what: &'static str,
        /// The key's share of it.
        limit: usize,
    },
    /// The request waited longer than the queue timeout for a free sequence.
    QueueTimeout,
    /// No API key, or an unknown one.
    Unauthorized {
        /// Whether a key was sent at all.
        provided: bool,
    },
    /// The API key may not do this (an admin-only operation).
    Forbidden(String),
    /// The API key is over its requests or tokens per minute.
    RateLimited {
        /// Seconds until a request would be admitted.
        retry_after: u64,
    },
    /// The request took longer than the server's per-request timeout.
    Timeout,
    /// An upload's body came too slowly (it would hold an upload slot for long).
    BodyTimeout,
    /// The server is shutting down and its grace period is over.
    ShuttingDown,
    /// From the document and conversation store.
    Store(StoreError),
    /// An uploaded document that cannot be read.
    Document(hearth_rag::parse::ParseError),
    /// A model pull that failed.
    Pull(hearth_hub::PullError),
    /// A job, document or conversation that does not exist (or is another key's).
    Missing(Missing),
    /// A feature this server runs without.
    Disabled(Feature),
    /// Uploads or ingestion are full now.
    Busy(Busy),
    /// An uploaded file over the limit (in bytes, when known).
    FileTooLarge(Option<usize>),
    /// Something failed inside the server; details are in the log only.
    Internal,
}

impl ApiError {
    /// A 400 naming `param`.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { message: message.into(), param: Some(param.to_string()), code: "invalid_value" }
    }

    /// A 400 for a feature Hearth does not offer yet.
    pub fn unsupported(param: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { message: message.into(), param: Some(param.to_string()), code: "unsupported_parameter" }
    }

    /// Status, type, param, code and message.
    pub fn parts(&self) -> refused::Parts {
        use EngineError as E;
        let inv = "invalid_request_error";
        match self {
            ApiError::Engine(e) => match e {
                E::ModelNotFound { .. } => {
                    (StatusCode::NOT_FOUND, inv, Some("model".into()), Some("model_not_found"), e.to_string())
                }
                E::NoDefaultModel => (
                    StatusCode::BAD_REQUEST,
                    inv,
                    Some("model".into()),
                    Some("missing_required_parameter"),
                    e.to_string(),
                ),
                E::InvalidParam { param, reason } => {
                    (StatusCode::BAD_REQUEST, inv, Some(param.clone()), Some("invalid_value"), reason.to_string())
                }
                E::ContextLengthExceeded { .. } | E::PromptTooLong { .. } => (
                    StatusCode::BAD_REQUEST,
                    inv,
                    Some("messages".into()),
                    Some("context_length_exceeded"),
                    e.to_string(),
                ),
                E::InputTooLong { .. } => {
                    (StatusCode::BAD_REQUEST, inv, Some("input".into()), Some("context_length_exceeded"), e.to_string())
                }
                E::TemplateRejected(_) => {
                    (StatusCode::BAD_REQUEST, inv, Some("messages".into()), Some("invalid_messages"), e.to_string())
                }
                E::WrongModelKind(_) => {
                    (StatusCode::BAD_REQUEST, inv, Some("model".into()), Some("model_not_supported"), e.to_string())
                }
                E::Overloaded { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", None, Some("server_overloaded"), e.to_string())
                }
                E::NoCapacity { .. } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    Some("model".into()),
                    Some("model_capacity_exceeded"),
                    e.to_string(),
                ),
                E::Busy { .. } => (StatusCode::CONFLICT, inv, Some("model".into()), Some("model_busy"), e.to_string()),
                E::Unavailable { .. } => {
                    (StatusCode::SERVICE_UNAVAILABLE, "server_error", None, Some("model_unavailable"), e.to_string())
                }
                E::ModelLoad { model, reason: reason @ (LoadError::NoGpu(_) | LoadError::GpuLoad(_)) } => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    Some("model".into()),
                    Some("model_load_failed"),
                    format!("model `{model}` could not be loaded: {reason}"),
                ),
                E::ModelLoad { model, .. } => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    Some("model".into()),
                    Some("model_load_failed"),
                    format!("model `{model}` could not be loaded (the file may be corrupt or truncated); see the server log"),
                ),
                E::DeleteFailed { model, .. } => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    Some("model".into()),
                    Some("model_delete_failed"),
                    format!("model `{model}` could not be deleted; see the server log"),
                ),
                E::InvalidGrammar(_) => {
                    (StatusCode::BAD_REQUEST, inv, Some("grammar".into()), Some("invalid_grammar"), e.to_string())
                }
                E::ModelCrashed { .. } | E::CrashLoop { .. } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    Some("model".into()),
                    Some("model_crashed"),
                    e.to_string(),
                ),
                E::Decode(_) | E::WorkerFailed => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    None,
                    Some("internal_error"),
                    "the model failed while generating; see the server log".into(),
                ),
            },
            ApiError::BadRequest { message, param, code } => {
                (StatusCode::BAD_REQUEST, inv, param.clone(), Some(code), message.clone())
            }
            ApiError::UnsupportedMediaType(m) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, inv, None, Some("unsupported_media_type"), m.clone())
            }
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                inv,
                None,
                Some("payload_too_large"),
                "the request body is too large".into(),
            ),
            ApiError::NotFound(path) => {
                (StatusCode::NOT_FOUND, inv, None, Some("not_found"), format!("no route for {path}"))
            }
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                inv,
                None,
                Some("method_not_allowed"),
                "method not allowed for this route".into(),
            ),
            ApiError::TooManyRequests => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                None,
                Some("too_many_requests"),
                "too many requests in flight; retry shortly".into(),
            ),
            ApiError::Quota { what, limit } => (
                StatusCode::FORBIDDEN,
                inv,
                None,
                Some("quota_exceeded"),
                format!("this API key's quota of {limit} {what} is reached; delete some first"),
            ),
            ApiError::KeyShare { what, limit } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                None,
                Some("key_share_exceeded"),
                format!("this API key already holds its share of {what} ({limit}); retry when one of them ends"),
            ),
            ApiError::QueueTimeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                None,
                Some("queue_timeout"),
                "the request waited too long for a free sequence; retry shortly".into(),
            ),
            ApiError::Unauthorized { provided: false } => (
                StatusCode::UNAUTHORIZED,
                inv,
                None,
                Some("missing_api_key"),
                "You didn't provide an API key. Send it as `Authorization: Bearer YOUR_KEY` (or `x-api-key: YOUR_KEY`).".into(),
            ),
            ApiError::Unauthorized { provided: true } => (
                StatusCode::UNAUTHORIZED,
                inv,
                None,
                Some("invalid_api_key"),
                "Incorrect API key provided.".into(),
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, inv, None, Some("permission_denied"), m.clone()),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                None,
                Some("rate_limit_exceeded"),
                "Rate limit reached for this API key (requests or tokens per minute); retry after the time in Retry-After.".into(),
            ),
            ApiError::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "server_error",
                None,
                Some("timeout"),
                "the request took longer than the server's request timeout".into(),
            ),
            ApiError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                inv,
                None,
                Some("body_timeout"),
                "the request body came too slowly (a pause over 30 s, or under 32 KiB/s on average after 30 s)".into(),
            ),
            ApiError::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                None,
                Some("server_shutting_down"),
                "the server is shutting down; retry against another instance".into(),
            ),
            ApiError::Store(e) => refused::store(e),
            ApiError::Document(e) => refused::document(e),
            ApiError::Pull(e) => refused::pull(e),
            ApiError::Missing(m) => refused::missing(m),
            ApiError::Disabled(f) => refused::disabled(*f),
            ApiError::Busy(b) => refused::busy(*b),
            ApiError::FileTooLarge(limit) => refused::file_too_large(*limit),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                Some("internal_error"),
                "internal server error".into(),
            ),
        }
    }

    /// The OpenAI-shaped body.
    pub fn body(&self) -> ErrorBody {
        let (_, kind, param, code, message) = self.parts();
        ErrorBody { error: ErrorDetail { message, kind: kind.to_string(), param, code: code.map(str::to_string) } }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::Engine(e)
    }
}

impl From<hearth_hub::PullError> for ApiError {
    fn from(e: hearth_hub::PullError) -> Self {
        ApiError::Pull(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _, _, code, _) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        let reason = code.unwrap_or(if status.is_server_error() { "server_error" } else { "invalid_request" });
        crate::http::metrics::metrics().inc(crate::http::metrics::REJECTED, &[("reason", reason)], 1);
        let said = self.said();
        let mut res = (status, axum::Json(&said.body)).into_response();
        res.extensions_mut().insert(said);
        if let ApiError::RateLimited { retry_after } | ApiError::Engine(EngineError::CrashLoop { retry_after, .. }) =
            self
        {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        } else if matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

/// What an error says, kept on its response so that [`in_protocol`] can give it the shape of
/// the route's protocol.
#[derive(Debug, Clone)]
pub struct Said {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI's body.
    pub body: ErrorBody,
    /// Ollama's words for it where they differ from OpenAI's (an unknown model reads `model
    /// "x" not found, try pulling it first`, which clients look for to offer a pull).
    pub ollama: String,
}

impl ApiError {
    /// What the error says, for any protocol.
    pub fn said(&self) -> Said {
        let body = self.body();
        let ollama = match self {
            ApiError::Engine(EngineError::ModelNotFound { model }) => {
                format!("model \"{model}\" not found, try pulling it first")
            }
            _ => body.error.message.clone(),
        };
        Said { status: self.parts().0, body, ollama }
    }
}

/// Anthropic's error type for a status.
pub fn anthropic_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 405 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

/// An error body in a protocol's shape.
pub fn shaped(protocol: Protocol, said: &Said) -> serde_json::Value {
    match protocol {
        Protocol::OpenAi => serde_json::to_value(&said.body).unwrap_or_default(),
        Protocol::Ollama => serde_json::json!({ "error": said.ollama }),
        Protocol::Anthropic => serde_json::json!({
            "type": "error",
            "error": {"type": anthropic_kind(said.status), "message": said.body.error.message},
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_error_uses_openai_wording() {
        let e = ApiError::from(EngineError::ContextLengthExceeded { prompt_tokens: 10, max_tokens: 20, n_ctx: 16 });
        let b = e.body();
        assert_eq!(b.error.code.as_deref(), Some("context_length_exceeded"));
        assert!(b.error.message.starts_with("This model's maximum context length is 16 tokens. However, you requested 30 tokens (10 in the messages, 20 in the completion)."), "{}", b.error.message);
    }

    #[test]
    fn ollama_says_not_found_its_own_way() {
        let e = ApiError::from(EngineError::ModelNotFound { model: "smol:q4".into() });
        let v = shaped(Protocol::Ollama, &e.said());
        assert_eq!(v["error"], "model \"smol:q4\" not found, try pulling it first");
        let v = shaped(Protocol::Anthropic, &e.said());
        assert_eq!((v["type"].as_str(), v["error"]["type"].as_str()), (Some("error"), Some("not_found_error")));
    }

    #[test]
    fn internal_details_are_not_returned() {
        let reason = hearth_engine::error::LoadError::Unreadable;
        let e = ApiError::from(EngineError::ModelLoad { model: "m".into(), reason: reason.clone() });
        assert!(!e.body().error.message.contains(&reason.to_string()), "the cause is for the log");
        assert_eq!(e.parts().0, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
