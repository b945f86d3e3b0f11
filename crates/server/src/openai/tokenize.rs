//! `POST /tokenize` and `POST /detokenize` for any model (llama-server's shape).

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::pipeline::validate;
use crate::services::owner::Principal;
use crate::services::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use hearth_engine::KeepAlive;
use hearth_protocol::openai::ErrorBody;
use hearth_protocol::tokenize::{
    DetokenizeRequest, DetokenizeResponse, Piece, TokenEntry, TokenizeRequest, TokenizeResponse,
};

/// Tokenizes `content` with the model's tokenizer (loading the model if needed).
///
/// # Errors
/// 400 without `content`, 404 for an unknown model.
#[utoipa::path(post, path = "/tokenize", tag = "tokenizer", request_body = TokenizeRequest, responses((status = 200, description = "Token ids (with pieces on request)", body = TokenizeResponse), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown model", body = ErrorBody), (status = 429, description = "Too many requests or over the key's rate limit", body = ErrorBody), (status = 503, description = "Overloaded, no room, or shutting down", body = ErrorBody)))]
pub async fn tokenize(
    State(app): State<AppState>,
    who: Principal,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<TokenizeRequest>,
) -> Result<Response, ApiError> {
    let content = req.content.ok_or_else(|| ApiError::invalid("content", "content is required"))?;
    let _admitted = crate::pipeline::generate::admit(&app, caller)?;
    let handle = who.models(&app.models).acquire(&req.model, None, KeepAlive::Default).await?;
    let (add_special, with_pieces) = (req.add_special, req.with_pieces);
    // The answer of a long text is large: it is built and serialised with the tokens, off the
    // async runtime.
    let body = handle
        .with_tokenizer(content.len(), move |t| {
            let tokens = t
                .tokenize(&content, add_special)
                .into_iter()
                .map(|id| match with_pieces {
                    false => TokenEntry::Id(id),
                    true => {
                        let piece =
                            String::from_utf8(t.piece(id)).map_or_else(|e| Piece::Bytes(e.into_bytes()), Piece::Text);
                        TokenEntry::WithPiece { id, piece }
                    }
                })
                .collect();
            serde_json::to_vec(&TokenizeResponse { tokens })
        })
        .await?
        .map_err(|e| {
            tracing::error!(error = %e, "could not serialise a tokenize answer");
            ApiError::Internal
        })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The text of `tokens`.
///
/// # Errors
/// 400 without `tokens` or for ids outside the vocabulary, 404 for an unknown model.
#[utoipa::path(post, path = "/detokenize", tag = "tokenizer", request_body = DetokenizeRequest, responses((status = 200, description = "The text", body = DetokenizeResponse), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown model", body = ErrorBody), (status = 429, description = "Too many requests or over the key's rate limit", body = ErrorBody), (status = 503, description = "Overloaded, no room, or shutting down", body = ErrorBody)))]
pub async fn detokenize(
    State(app): State<AppState>,
    who: Principal,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<DetokenizeRequest>,
) -> Result<Json<DetokenizeResponse>, ApiError> {
    let tokens = req.tokens.ok_or_else(|| ApiError::invalid("tokens", "tokens is required"))?;
    let tokens = validate::ids("tokens", &tokens)?;
    let _admitted = crate::pipeline::generate::admit(&app, caller)?;
    let handle = who.models(&app.models).acquire(&req.model, None, KeepAlive::Default).await?;
    Ok(Json(DetokenizeResponse { content: handle.detokenize(tokens).await? }))
}
