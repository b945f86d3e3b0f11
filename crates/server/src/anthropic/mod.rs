//! Anthropic's Messages API: `POST /v1/messages` (whole or streamed with Anthropic's named
//! events) and `POST /v1/messages/count_tokens`, translated into the chat request every
//! protocol shares ([`crate::pipeline::prepare::prepare`]). Errors are `{"type": "error", "error": {"type",
//! "message"}}` (the route table marks these routes as Anthropic's). `x-api-key` is accepted
//! as the API key.

mod convert;
mod stream;

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::pipeline::generate;
use crate::pipeline::prepare::Prepared;
use crate::pipeline::validate;
use crate::services::state::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use hearth_engine::{Completion, FinishReason, KeepAlive, ModelKind};
use hearth_protocol::anthropic::{
    ContentBlock, CountTokens, CountTokensRequest, ErrorBody, MessagesRequest, MessagesResponse, Usage,
};
use hearth_protocol::openai::ChatCompletionRequest;
use serde_json::Value;

/// Creates a message: text and `tool_use` blocks with `stop_reason` `end_turn`,
/// `max_tokens`, `stop_sequence` or `tool_use`; with `stream: true`, server-sent events
/// `message_start`, `content_block_start`/`_delta`/`_stop`, `message_delta`, `message_stop`.
///
/// # Errors
/// Anthropic-shaped: 400 `invalid_request_error` (also for a missing `max_tokens`, images and
/// thinking), 401 `authentication_error`, 404 `not_found_error`, 429 `rate_limit_error`.
#[utoipa::path(post, path = "/v1/messages", tag = "anthropic", request_body = MessagesRequest, responses((status = 200, description = "The message, or with `stream: true` Anthropic's server-sent events", body = MessagesResponse), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown model", body = ErrorBody), (status = 429, description = "Over a limit", body = ErrorBody)))]
pub async fn messages(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<MessagesRequest>,
) -> Result<Response, ApiError> {
    let wire = to_chat(req)?;
    let Prepared { model, started, tools, stream, .. } =
        crate::pipeline::prepare::prepare(&app, caller, wire, validate::LENIENT).await?;
    let id = crate::http::ids::new_id("msg");
    if stream {
        let fmt = stream::Events::new(id, model.clone(), (started.prompt_tokens, started.cached_tokens), tools);
        return Ok(crate::pipeline::stream::stream_response(model, started, fmt));
    }
    let c = generate::collect(started).await?;
    let (content, calls) = crate::pipeline::prepare::read_answer(tools, c.text);
    let mut blocks: Vec<ContentBlock> =
        content.filter(|t| !t.is_empty()).map(|text| ContentBlock::Text { text }).into_iter().collect();
    blocks.extend(calls.into_iter().map(|c| ContentBlock::ToolUse {
        id: c.id,
        name: c.name,
        input: serde_json::from_str(&c.arguments).unwrap_or_else(|_| serde_json::json!({})),
    }));
    let called = blocks.iter().any(|b| matches!(b, ContentBlock::ToolUse { .. }));
    let body = MessagesResponse {
        id,
        kind: "message".into(),
        role: "assistant".into(),
        model: model.clone(),
        stop_reason: Some(stop_reason(c.finish, &c.completion, called).into()),
        stop_sequence: c.completion.stop_sequence.clone(),
        content: blocks,
        usage: usage(&c.completion),
    };
    Ok(generate::answer(model, c.summary, body))
}

/// Counts the tokens of the prompt a message request would give the model (template, system
/// prompt and tool descriptions included).
///
/// # Errors
/// As `/v1/messages`.
#[utoipa::path(post, path = "/v1/messages/count_tokens", tag = "anthropic", request_body = CountTokensRequest, responses((status = 200, description = "The prompt's tokens", body = CountTokens), (status = 400, description = "Bad request", body = ErrorBody), (status = 404, description = "Unknown model", body = ErrorBody)))]
pub async fn count_tokens(
    State(app): State<AppState>,
    who: crate::services::owner::Principal,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<CountTokensRequest>,
) -> Result<Json<CountTokens>, ApiError> {
    let _admitted = crate::pipeline::generate::admit(&app, caller)?;
    let full = MessagesRequest {
        model: req.model,
        max_tokens: Some(1),
        messages: req.messages,
        system: req.system,
        stop_sequences: None,
        stream: false,
        temperature: None,
        top_p: None,
        top_k: None,
        tools: req.tools,
        tool_choice: req.tool_choice,
        thinking: None,
        metadata: None,
    };
    let wire = to_chat(full)?;
    let checked = validate::check_chat(&wire, &app.models.settings().sampling, validate::LENIENT)?;
    let tools = crate::pipeline::tools::tool_request(
        wire.tools.as_deref(),
        wire.tool_choice.as_ref(),
        wire.parallel_tool_calls,
    )?;
    let handle = who.models(&app.models).acquire(&wire.model, Some(ModelKind::Causal), KeepAlive::Default).await?;
    let prompt = handle.render_chat(&checked.messages, tools.as_ref().map(|t| t.tools.as_slice())).await?;
    let n = handle.count_prompt(prompt).await?;
    Ok(Json(CountTokens { input_tokens: n as u32 }))
}

/// The chat request a message request means.
fn to_chat(req: MessagesRequest) -> Result<ChatCompletionRequest, ApiError> {
    let Some(max_tokens) = req.max_tokens else {
        return Err(ApiError::invalid("max_tokens", "max_tokens: Field required"));
    };
    if let Some(t) = &req.thinking {
        if t.get("type").and_then(Value::as_str) != Some("disabled") {
            return Err(ApiError::unsupported(
                "thinking",
                "extended thinking is not supported by the models Hearth serves",
            ));
        }
    }
    if let Some(t) = req.temperature.filter(|t| !(0.0..=1.0).contains(t)) {
        return Err(ApiError::invalid("temperature", format!("temperature must be between 0 and 1, got {t}")));
    }
    let mut messages: Vec<_> = convert::system(req.system)?.into_iter().collect();
    messages.extend(convert::messages(req.messages)?);
    let (tool_choice, parallel_tool_calls) = convert::tool_choice(req.tool_choice.as_ref())?;
    let mut wire = ChatCompletionRequest {
        model: req.model,
        messages,
        stream: req.stream,
        max_tokens: Some(max_tokens),
        stop: req.stop_sequences.filter(|s| !s.is_empty()).map(hearth_protocol::openai::StopSpec::Many),
        tools: convert::tools(req.tools)?,
        tool_choice,
        parallel_tool_calls,
        ..ChatCompletionRequest::default()
    };
    wire.sampling.temperature = req.temperature;
    wire.sampling.top_p = req.top_p;
    wire.sampling.top_k = req.top_k;
    Ok(wire)
}

/// Why an answer ended, in Anthropic's words.
fn stop_reason(finish: FinishReason, c: &Completion, called: bool) -> &'static str {
    match finish {
        FinishReason::Length => "max_tokens",
        FinishReason::Stop if called => "tool_use",
        FinishReason::Stop if c.stop_sequence.is_some() => "stop_sequence",
        FinishReason::Stop => "end_turn",
    }
}

/// Anthropic's usage: prompt tokens read from the cache are counted apart.
fn usage(c: &Completion) -> Usage {
    Usage {
        input_tokens: c.prompt_tokens - c.cached_tokens.min(c.prompt_tokens),
        output_tokens: c.completion_tokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: c.cached_tokens,
    }
}
