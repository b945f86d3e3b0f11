//! `POST /v1/chat/completions`.

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::middleware::Summary;
use crate::openai::chat_stream::ChatStream;
use crate::pipeline::generate;
use crate::pipeline::prepare::{prepare, read_answer, OnAnswer, Prepared};
use crate::pipeline::validate;
use crate::services::state::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use hearth_engine::{FinishReason, ToolFamily};
use hearth_protocol::openai::ErrorBody;
use hearth_protocol::openai::{
    AssistantMessage, ChatChoice, ChatCompletionRequest, ChatCompletionResponse, Timings, Usage,
};

/// Handles a chat completion, streamed or not.
///
/// # Errors
/// OpenAI-shaped errors for bad input, unknown models and engine failures.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai", request_body = ChatCompletionRequest, responses((status = 200, description = "A chat completion, or with `stream: true` server-sent events of `ChatCompletionChunk`", body = ChatCompletionResponse), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown model", body = ErrorBody), (status = 429, description = "Too many requests or over the key's rate limit", body = ErrorBody), (status = 503, description = "Overloaded, no room, or shutting down", body = ErrorBody)))]
pub async fn chat_completions(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    match run(&app, caller, req, None).await? {
        Chat::Stream(res) => Ok(res),
        Chat::Done { model, summary, body } => Ok(generate::answer(model, summary, *body)),
    }
}

/// A chat answer: a stream already framed, or the whole completion.
pub enum Chat {
    /// Server-sent events.
    Stream(Response),
    /// The completion.
    Done {
        /// The model that answered.
        model: String,
        /// For the log line.
        summary: Summary,
        /// The body.
        body: Box<ChatCompletionResponse>,
    },
}

/// Runs a chat request (with retrieval when `rag` is set); `on_answer` gets a streamed
/// answer's text when the stream ends.
///
/// # Errors
/// As [`chat_completions`].
pub async fn run(
    app: &AppState,
    caller: Option<Extension<Caller>>,
    req: ChatCompletionRequest,
    on_answer: Option<OnAnswer>,
) -> Result<Chat, ApiError> {
    let Prepared { model, started, tools, logprobs, citations, include_usage, stream } =
        prepare(app, caller, req, validate::OPENAI).await?;
    if stream {
        let fmt = ChatStream::new(model.clone(), include_usage, citations, on_answer, tools, logprobs);
        return Ok(Chat::Stream(crate::pipeline::stream::stream_response(model, started, fmt)));
    }
    let all = generate::collect_n(started).await?;
    let (usage, timings, summary) = totals(&all);
    let choices = all.into_iter().enumerate().map(|(i, c)| choice(i, c, tools, logprobs)).collect();
    let body = ChatCompletionResponse {
        id: crate::http::ids::new_id("chatcmpl"),
        object: "chat.completion".into(),
        created: crate::http::ids::now_secs(),
        model: model.clone(),
        system_fingerprint: crate::FINGERPRINT.into(),
        choices,
        usage,
        timings,
        citations,
    };
    Ok(Chat::Done { model, summary, body: Box::new(body) })
}

/// One choice of a whole answer: tool calls read out when tools were offered.
fn choice(index: usize, c: generate::Collected, tools: Option<ToolFamily>, logprobs: bool) -> ChatChoice {
    let (content, calls) = read_answer(tools, c.text);
    let calls = Some(calls).filter(|c| !c.is_empty());
    let finish = match c.finish {
        FinishReason::Stop if calls.is_some() => "tool_calls",
        f => f.as_str(),
    };
    ChatChoice {
        index: index as u32,
        message: AssistantMessage {
            role: "assistant".into(),
            content,
            refusal: None,
            tool_calls: calls.map(crate::pipeline::tools::wire_calls),
        },
        logprobs: logprobs.then(|| crate::pipeline::logprobs::chat(&c.logprobs)),
        finish_reason: finish.into(),
    }
}

/// Usage over all choices (the prompt once, every choice's tokens), the first choice's
/// timings, and the summary for the log.
fn totals(all: &[generate::Collected]) -> (Usage, Timings, crate::http::middleware::Summary) {
    let total = generate::total(all);
    let first = all.first().map(|c| (generate::timings(&c.completion), c.summary.clone()));
    let (timings, summary) = first.unwrap_or_else(|| (generate::timings(&total), Default::default()));
    (generate::usage(&total), timings, summary)
}
