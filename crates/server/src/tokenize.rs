//! `POST /tokenize` and `POST /detokenize` for any model (llama-server's shape).

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::validate;
use axum::extract::State;
use axum::Json;
use hearth_protocol::tokenize::{
    DetokenizeRequest, DetokenizeResponse, Piece, TokenEntry, TokenizeRequest, TokenizeResponse,
};

/// Tokenizes `content` with the model's tokenizer (loading the model if needed).
///
/// # Errors
/// 400 without `content`, 404 for an unknown model.
pub async fn tokenize(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<TokenizeRequest>,
) -> Result<Json<TokenizeResponse>, ApiError> {
    let content = req.content.ok_or_else(|| ApiError::invalid("content", "content is required"))?;
    let handle = app.models.get_any(&req.model).await?;
    let tokens = handle.tokenize(content, req.add_special).await?;
    let tokens = tokens
        .into_iter()
        .map(|(id, bytes)| match req.with_pieces {
            false => TokenEntry::Id(id),
            true => {
                let piece = String::from_utf8(bytes).map_or_else(|e| Piece::Bytes(e.into_bytes()), Piece::Text);
                TokenEntry::WithPiece { id, piece }
            }
        })
        .collect();
    Ok(Json(TokenizeResponse { tokens }))
}

/// The text of `tokens`.
///
/// # Errors
/// 400 without `tokens` or for ids outside the vocabulary, 404 for an unknown model.
pub async fn detokenize(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<DetokenizeRequest>,
) -> Result<Json<DetokenizeResponse>, ApiError> {
    let tokens = req.tokens.ok_or_else(|| ApiError::invalid("tokens", "tokens is required"))?;
    let tokens = validate::ids("tokens", &tokens)?;
    let handle = app.models.get_any(&req.model).await?;
    Ok(Json(DetokenizeResponse { content: handle.detokenize(tokens).await? }))
}
