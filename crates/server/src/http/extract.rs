//! `ApiJson`: a JSON extractor whose rejections are OpenAI-shaped errors.

use crate::http::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

/// Like `axum::Json`, but a bad body is an [`ApiError`].
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(from_rejection(rejection)),
        }
    }
}

/// A JSON body whatever its `Content-Type` (Ollama accepts `curl -d` without one); a bad body
/// is an [`ApiError`].
#[derive(Debug)]
pub struct AnyJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AnyJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => return Err(ApiError::PayloadTooLarge),
            Err(e) => {
                return Err(ApiError::BadRequest { message: e.body_text(), param: None, code: "invalid_request" })
            }
        };
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { &bytes[..] };
        serde_json::from_slice(bytes).map(AnyJson).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::BadRequest {
                message: format!("the body does not match the expected schema: {e}"),
                param: None,
                code: "invalid_value",
            },
            _ => ApiError::BadRequest {
                message: format!("the body is not valid JSON: {e}"),
                param: None,
                code: "invalid_json",
            },
        })
    }
}

fn from_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("expected a request body with `Content-Type: application/json`".into())
        }
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest {
            message: format!("the body is not valid JSON: {}", e.body_text()),
            param: None,
            code: "invalid_json",
        },
        JsonRejection::JsonDataError(e) => {
            let text = e.body_text();
            let param = field_of(&text);
            ApiError::BadRequest {
                message: format!("the body does not match the expected schema: {text}"),
                param,
                code: "invalid_value",
            }
        }
        JsonRejection::BytesRejection(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge
        }
        other => ApiError::BadRequest { message: other.body_text(), param: None, code: "invalid_request" },
    }
}

/// Extracts the field path from serde's "Failed to deserialize the JSON body into the target
/// type: messages[0].role: ..." message.
fn field_of(text: &str) -> Option<String> {
    let rest = text.split("target type: ").nth(1)?;
    let missing = |s: &str| s.strip_prefix("missing field `").and_then(|m| m.split('`').next()).map(str::to_string);
    match rest.split_once(": ") {
        Some((path, detail)) if !path.contains(' ') => match missing(detail) {
            Some(field) => Some(format!("{path}.{field}")),
            None => Some(path.to_string()),
        },
        _ => missing(rest),
    }
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn field_paths_from_serde_messages() {
        assert_eq!(field_of("Failed to deserialize the JSON body into the target type: messages[0].content: invalid type: integer `3`").as_deref(), Some("messages[0].content"));
        assert_eq!(field_of("Failed to deserialize the JSON body into the target type: missing field `messages` at line 1 column 14").as_deref(), Some("messages"));
        assert_eq!(field_of("Failed to deserialize the JSON body into the target type: messages[1]: missing field `role` at line 1 column 9").as_deref(), Some("messages[1].role"));
    }
}
