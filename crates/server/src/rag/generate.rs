//! `POST /api/v1/generate`: a grounded answer to one prompt, with citations.

use crate::auth::Caller;
use crate::chat::{self, Chat};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::generate as gen;
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use hearth_protocol::openai::{
    ChatCompletionRequest, ChatMessage, ErrorBody, MessageContent, RagOptions, SamplingFields,
};
use serde::Deserialize;

/// `POST /api/v1/generate` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct GenerateRequest {
    /// The question or instruction.
    pub prompt: Option<String>,
    /// Collection to answer from; without one the model answers alone.
    pub collection: Option<String>,
    /// Chunks to retrieve (default 4).
    pub top_k: Option<i64>,
    /// Chat model (default: the server's).
    #[serde(default)]
    pub model: String,
    /// Stream as chat completion chunks (citations on the first one).
    #[serde(default)]
    pub stream: bool,
    /// Most tokens in the answer (default 512).
    pub max_tokens: Option<i64>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Conversation memory is not available yet; a session id is refused.
    pub session_id: Option<String>,
}

/// Answers `prompt` from `collection`; `citations` lists the sources by their `[n]`.
///
/// # Errors
/// 400 without a prompt, 404 unknown collection or model.
#[utoipa::path(post, path = "/api/v1/generate", tag = "retrieval", request_body = GenerateRequest, responses((status = 200, description = "answer, citations, usage (or chat completion chunks when streamed)", body = serde_json::Value), (status = 400, description = "Bad request", body = ErrorBody), (status = 404, description = "Unknown collection or model", body = ErrorBody)))]
pub async fn generate(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<GenerateRequest>,
) -> Result<Response, ApiError> {
    let prompt =
        req.prompt.filter(|p| !p.trim().is_empty()).ok_or_else(|| ApiError::invalid("prompt", "prompt is required"))?;
    if req.session_id.is_some() {
        return Err(ApiError::unsupported("session_id", "conversation memory (session_id) is not supported yet"));
    }
    let chat_req = ChatCompletionRequest {
        model: req.model,
        messages: vec![ChatMessage {
            role: "user".into(),
            content: Some(MessageContent::Text(prompt)),
            ..Default::default()
        }],
        stream: req.stream,
        max_tokens: Some(req.max_tokens.unwrap_or(512)),
        rag: req.collection.map(|collection| RagOptions { collection, top_k: req.top_k }),
        sampling: SamplingFields { temperature: req.temperature, ..Default::default() },
        ..Default::default()
    };
    match chat::run(&app, caller, chat_req).await? {
        Chat::Stream(res) => Ok(res),
        Chat::Done { model, summary, body } => {
            let choice = body.choices.into_iter().next();
            let json = serde_json::json!({
                "id": body.id.replace("chatcmpl", "gen"),
                "object": "generation",
                "created": body.created,
                "model": body.model,
                "answer": choice.as_ref().map(|c| c.message.content.clone()).unwrap_or_default(),
                "finish_reason": choice.map(|c| c.finish_reason).unwrap_or_default(),
                "citations": body.citations.unwrap_or_default(),
                "usage": body.usage,
            });
            Ok(gen::answer(model, summary, json))
        }
    }
}
