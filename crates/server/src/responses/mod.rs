//! OpenAI's Responses API, stateless: `POST /v1/responses` translated into the chat request
//! every protocol shares, answered as a response object or its typed server-sent events
//! (`response.created`, `response.output_text.delta`, ..., `response.completed`). Nothing is
//! stored: `store: true` and `previous_response_id` are refused with a 400 that says so.

mod convert;
mod stream;

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::pipeline::generate;
use crate::pipeline::prepare::Prepared;
use crate::services::state::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use hearth_engine::{Completion, FinishReason};
use hearth_protocol::openai::{ChatCompletionRequest, ErrorBody};
use hearth_protocol::responses::{InputDetails, OutputDetails, Response as Object, ResponsesRequest, Usage};
use serde_json::{json, Value};

/// What a response object repeats of its request.
#[derive(Debug, Clone)]
pub(crate) struct Echo {
    instructions: Option<String>,
    max_output_tokens: Option<i64>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    tool_choice: Value,
    tools: Vec<Value>,
    text: Value,
    metadata: Value,
    parallel_tool_calls: bool,
}

/// Creates a response: `message` items with `output_text`, and `function_call` items; with
/// `stream: true`, typed server-sent events.
///
/// # Errors
/// OpenAI-shaped: 400 bad input (also `store: true`, `previous_response_id`, images,
/// built-in tools), 404 unknown model, 429 over a limit.
#[utoipa::path(post, path = "/v1/responses", tag = "openai", request_body = ResponsesRequest, responses((status = 200, description = "The response, or with `stream: true` its typed server-sent events", body = Object), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown model", body = ErrorBody), (status = 429, description = "Too many requests or over the key's rate limit", body = ErrorBody)))]
pub async fn create(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<ResponsesRequest>,
) -> Result<Response, ApiError> {
    let (wire, echo) = to_chat(req).map_err(in_responses_terms)?;
    let Prepared { model, started, tools, stream, .. } =
        crate::pipeline::prepare::prepare(&app, caller, wire, crate::pipeline::validate::OPENAI)
            .await
            .map_err(in_responses_terms)?;
    let id = crate::http::ids::new_id("resp");
    if stream {
        let fmt = stream::Events::new(id, model.clone(), echo, tools);
        return Ok(crate::pipeline::stream::stream_response(model, started, fmt));
    }
    let c = generate::collect(started).await?;
    let (content, calls) = crate::pipeline::prepare::read_answer(tools, c.text);
    let mut output: Vec<Value> = content
        .filter(|t| !t.is_empty())
        .map(|t| message_item(&crate::http::ids::new_id("msg"), &t, item_status(c.finish)))
        .into_iter()
        .collect();
    output.extend(
        calls
            .iter()
            .map(|k| call_item(&crate::http::ids::new_id("fc"), &k.id, &k.name, &k.arguments, item_status(c.finish))),
    );
    let body = object(&echo, &id, &model, status(c.finish), output, Some(usage(&c.completion)));
    Ok(generate::answer(model, c.summary, body))
}

fn to_chat(req: ResponsesRequest) -> Result<(ChatCompletionRequest, Echo), ApiError> {
    if req.store == Some(true) {
        return Err(ApiError::unsupported(
            "store",
            "Hearth's Responses API is stateless: responses are not stored; send `store: false`",
        ));
    }
    if req.previous_response_id.is_some() {
        return Err(ApiError::unsupported(
            "previous_response_id",
            "responses are not stored, so there is no previous response; send the whole conversation in `input`",
        ));
    }
    if req.reasoning.as_ref().is_some_and(|r| r.get("effort").is_some_and(|e| !e.is_null())) {
        return Err(ApiError::unsupported("reasoning", "reasoning is not supported by the models Hearth serves"));
    }
    let format = req.text.as_ref().and_then(|t| t.format.clone());
    // One call unless `parallel_tool_calls: true`: Hearth's default on every protocol (OpenAI's
    // is true), because small models repeat a call until the limit.
    let parallel = req.parallel_tool_calls.unwrap_or(false);
    let echo = Echo {
        instructions: req.instructions.clone(),
        max_output_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        tool_choice: req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        tools: req.tools.clone().unwrap_or_default(),
        text: json!({"format": format.clone().unwrap_or_else(|| json!({"type": "text"}))}),
        metadata: req.metadata.clone().unwrap_or_else(|| json!({})),
        parallel_tool_calls: parallel,
    };
    let mut wire = ChatCompletionRequest {
        model: req.model,
        messages: convert::messages(req.instructions, req.input)?,
        stream: req.stream,
        max_completion_tokens: req.max_output_tokens,
        tools: convert::tools(req.tools.as_deref())?,
        tool_choice: convert::tool_choice(req.tool_choice.as_ref()),
        parallel_tool_calls: Some(parallel),
        response_format: convert::format(format.as_ref())?,
        ..ChatCompletionRequest::default()
    };
    wire.sampling.temperature = req.temperature;
    wire.sampling.top_p = req.top_p;
    Ok((wire, echo))
}

/// An error's `param` in the Responses API's field names (the request was validated as a
/// chat request).
fn in_responses_terms(e: ApiError) -> ApiError {
    let (status, _, param, code, message) = e.parts();
    let Some(param) = param.filter(|_| status == axum::http::StatusCode::BAD_REQUEST) else { return e };
    let renamed = match param.as_str() {
        "max_completion_tokens" | "max_tokens" => "max_output_tokens".to_string(),
        "messages" => "input".to_string(),
        "response_format" => "text.format".to_string(),
        p if p.starts_with("tools[") => p.replace(".function.", ".").replace(".function", ""),
        p if p.starts_with("messages[") => p.replacen("messages", "input", 1),
        _ => return e,
    };
    ApiError::BadRequest { message, param: Some(renamed), code: code.unwrap_or("invalid_value") }
}

/// An output item's status: `incomplete` when the limit cut the answer.
pub(crate) fn item_status(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "completed",
        FinishReason::Length => "incomplete",
    }
}

fn status(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "completed",
        FinishReason::Length => "incomplete",
    }
}

/// A `message` output item with one `output_text` part.
pub(crate) fn message_item(id: &str, text: &str, status: &str) -> Value {
    let content = if status == "in_progress" { json!([]) } else { json!([text_part(text)]) };
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
}

pub(crate) fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A `function_call` output item.
pub(crate) fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments, "status": status})
}

pub(crate) fn usage(c: &Completion) -> Usage {
    Usage {
        input_tokens: c.prompt_tokens,
        input_tokens_details: InputDetails { cached_tokens: c.cached_tokens, cache_write_tokens: 0 },
        output_tokens: c.completion_tokens,
        output_tokens_details: OutputDetails { reasoning_tokens: 0 },
        total_tokens: c.prompt_tokens + c.completion_tokens,
    }
}

/// The response object.
pub(crate) fn object(
    e: &Echo,
    id: &str,
    model: &str,
    status: &str,
    output: Vec<Value>,
    usage: Option<Usage>,
) -> Object {
    Object {
        id: id.to_string(),
        object: "response".into(),
        created_at: crate::http::ids::now_secs(),
        status: status.into(),
        error: None,
        incomplete_details: (status == "incomplete").then(|| json!({"reason": "max_output_tokens"})),
        instructions: e.instructions.clone(),
        max_output_tokens: e.max_output_tokens,
        model: model.into(),
        output,
        parallel_tool_calls: e.parallel_tool_calls,
        temperature: e.temperature,
        top_p: e.top_p,
        tool_choice: e.tool_choice.clone(),
        tools: e.tools.clone(),
        text: e.text.clone(),
        store: false,
        metadata: e.metadata.clone(),
        usage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_responses_fields() {
        let e = in_responses_terms(ApiError::invalid("max_completion_tokens", "x"));
        assert_eq!(e.body().error.param.as_deref(), Some("max_output_tokens"));
        let e = in_responses_terms(ApiError::invalid("tools[0].function.name", "x"));
        assert_eq!(e.body().error.param.as_deref(), Some("tools[0].name"));
        let e = in_responses_terms(ApiError::invalid("messages[2].content", "x"));
        assert_eq!(e.body().error.param.as_deref(), Some("input[2].content"));
    }
}
