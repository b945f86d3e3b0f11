//! `POST /api/embed` and the legacy `POST /api/embeddings`, through the embeddings path
//! `/v1/embeddings` uses.

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::AnyJson;
use crate::pipeline::generate;
use crate::services::state::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use hearth_protocol::ollama::{EmbedRequest, EmbedResponse, EmbeddingsRequest, EmbeddingsResponse, Error};
use hearth_protocol::openai::{EmbeddingInput, EmbeddingRequest, EmbeddingVector};
use std::time::Instant;

/// Embeds a string or a list of strings; vectors are unit length. Inputs longer than the
/// model's window are cut unless `truncate` is false (then a 400).
///
/// # Errors
/// `{"error": "..."}`: 400 bad input or a model that does not embed, 404 unknown model.
#[utoipa::path(post, path = "/api/embed", tag = "ollama", request_body = EmbedRequest, responses((status = 200, description = "One vector per input", body = EmbedResponse), (status = 400, description = "Bad request", body = Error), (status = 404, description = "Unknown model", body = Error)))]
pub async fn embed(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    AnyJson(req): AnyJson<EmbedRequest>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let input: EmbeddingInput = serde_json::from_value(req.input)
        .map_err(|_| ApiError::invalid("input", "input must be a string or a list of strings"))?;
    let wire = EmbeddingRequest {
        model: super::model_name(&req.model).to_string(),
        input: Some(input),
        dimensions: req.dimensions,
        truncate: Some(req.truncate.unwrap_or(true)),
        keep_alive: req.keep_alive,
        ..EmbeddingRequest::default()
    };
    let (out, summary) = crate::openai::embeddings::create(&app, caller, wire).await?;
    let embeddings = out.data.into_iter().map(|e| floats(e.embedding)).collect();
    let body = EmbedResponse {
        model: out.model.clone(),
        embeddings,
        total_duration: arrived.elapsed().as_nanos() as u64,
        load_duration: 0,
        prompt_eval_count: out.usage.prompt_tokens,
    };
    Ok(generate::answer(out.model, summary, body))
}

/// The legacy form: one `prompt`, one `embedding`, not normalised (as in Ollama).
///
/// # Errors
/// As `/api/embed`.
#[utoipa::path(post, path = "/api/embeddings", tag = "ollama", request_body = EmbeddingsRequest, responses((status = 200, description = "The vector", body = EmbeddingsResponse), (status = 400, description = "Bad request", body = Error), (status = 404, description = "Unknown model", body = Error)))]
pub async fn embeddings(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    AnyJson(req): AnyJson<EmbeddingsRequest>,
) -> Result<Response, ApiError> {
    let wire = EmbeddingRequest {
        model: super::model_name(&req.model).to_string(),
        input: Some(EmbeddingInput::Text(req.prompt)),
        truncate: Some(true),
        // Ollama normalises `/api/embed` only; the legacy route returns the raw vector.
        normalize: Some(false),
        keep_alive: req.keep_alive,
        ..EmbeddingRequest::default()
    };
    let (mut out, summary) = crate::openai::embeddings::create(&app, caller, wire).await?;
    let embedding = out.data.pop().map(|e| floats(e.embedding)).unwrap_or_default();
    Ok(generate::answer(out.model, summary, EmbeddingsResponse { embedding }))
}

fn floats(v: EmbeddingVector) -> Vec<f32> {
    match v {
        EmbeddingVector::Float(f) => f,
        // Never asked for (no `encoding_format`).
        EmbeddingVector::Base64(_) => Vec::new(),
    }
}
