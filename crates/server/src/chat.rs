//! `POST /v1/chat/completions`.

use crate::auth::Caller;
use crate::chat_stream::ChatStream;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::generate;
use crate::middleware::Summary;
use crate::owner::Principal;
use crate::state::AppState;
use crate::validate;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use hearth_engine::{FinishReason, ModelKind, ToolFamily};
use hearth_protocol::openai::ErrorBody;
use hearth_protocol::openai::{
    AssistantMessage, ChatChoice, ChatCompletionRequest, ChatCompletionResponse, RagOptions, Timings, Usage,
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

/// Called with the whole answer text when a streamed answer ends (e.g. to store a session).
pub type OnAnswer = Box<dyn FnOnce(String) + Send + 'static>;

/// A chat request the engine has admitted, for any protocol to frame.
pub struct Prepared {
    /// The model that answers.
    pub model: String,
    /// The admitted request's events.
    pub started: generate::Started,
    /// How tool calls are read out of the text, when tools were offered.
    pub tools: Option<ToolFamily>,
    /// Whether log-probabilities were asked for.
    pub logprobs: bool,
    /// The sources given to the model (with `rag`).
    pub citations: Option<Vec<serde_json::Value>>,
    /// A streamed answer ends with a usage chunk.
    pub include_usage: bool,
    /// Stream the answer.
    pub stream: bool,
}

/// Validates a chat request (the wire form every chat protocol translates into), loads the
/// model, renders the prompt and submits it; returns once the engine admitted it.
///
/// # Errors
/// As [`chat_completions`].
pub async fn prepare(
    app: &AppState,
    caller: Option<Extension<Caller>>,
    req: ChatCompletionRequest,
    rules: validate::Rules,
) -> Result<Prepared, ApiError> {
    let mut messages = validate::check_chat(&req)?;
    let constraint = crate::structured::constraint(req.response_format.as_ref(), req.grammar.as_deref())?;
    let tools = crate::tools::tool_request(req.tools.as_deref(), req.tool_choice.as_ref(), req.parallel_tool_calls)?;
    if tools.is_some() && constraint.is_some() {
        return Err(ApiError::unsupported(
            "response_format",
            "response_format together with tools is not supported yet",
        ));
    }
    let grammar = crate::structured::grammar(&app.models, constraint.as_ref(), req.ignore_eos).await?;
    let who = Principal::of(caller.as_ref().map(|c| &c.0));
    let admission = generate::admit(app, caller)?;
    let keep_alive = validate::keep_alive(req.keep_alive.as_ref())?;
    let placed = validate::num_gpu(req.num_gpu);
    let handle = who.models(&app.models).acquire_placed(&req.model, Some(ModelKind::Causal), keep_alive, placed).await?;
    let citations = match &req.rag {
        Some(opts) => Some(ground(app, &handle, (&who, opts), &req, &mut messages).await?),
        None => None,
    };
    let (stream, n) = (req.stream, validate::choices(req.n)?);
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    let family = handle.tool_family();
    let grammar = match &tools {
        Some(t) => Some(crate::structured::tool_grammar(&app.models, family, t, req.ignore_eos).await?),
        None => grammar,
    };
    let offered = tools.as_ref().map(|t| t.tools.as_slice());
    let mut gen = validate::chat_request(&handle, req, &messages, offered, &app.models.settings().sampling, rules).await?;
    gen.sampling.grammar = grammar;
    let logprobs = gen.logprobs.is_some();
    let started = generate::start_n(app, &handle, gen, n, admission).await?;
    let tools = tools.is_some().then_some(family);
    Ok(Prepared { model: handle.info.id.clone(), started, tools, logprobs, citations, include_usage, stream })
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
        return Ok(Chat::Stream(generate::stream_response(model, started, fmt)));
    }
    let all = generate::collect_n(started).await?;
    let (usage, timings, summary) = totals(&all);
    let choices = all.into_iter().enumerate().map(|(i, c)| choice(i, c, tools, logprobs)).collect();
    let body = ChatCompletionResponse {
        id: generate::new_id("chatcmpl"),
        object: "chat.completion".into(),
        created: generate::now_secs(),
        model: model.clone(),
        system_fingerprint: crate::FINGERPRINT.into(),
        choices,
        usage,
        timings,
        citations,
    };
    Ok(Chat::Done { model, summary, body: Box::new(body) })
}

/// A whole answer's content and tool calls (read out when tools were offered).
pub fn read_answer(tools: Option<ToolFamily>, text: String) -> (Option<String>, Vec<hearth_engine::ToolCall>) {
    match tools {
        Some(family) => {
            let p = hearth_engine::tools::parse_output(family, &text);
            (p.content, p.calls)
        }
        None => (Some(text), Vec::new()),
    }
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
            tool_calls: calls.map(crate::tools::wire_calls),
        },
        logprobs: logprobs.then(|| crate::logprobs::chat(&c.logprobs)),
        finish_reason: finish.into(),
    }
}

/// Usage over all choices (the prompt once, every choice's tokens), the first choice's
/// timings, and the summary for the log.
fn totals(all: &[generate::Collected]) -> (Usage, Timings, crate::middleware::Summary) {
    let total = generate::total(all);
    let first = all.first().map(|c| (generate::timings(&c.completion), c.summary.clone()));
    let (timings, summary) = first.unwrap_or_else(|| (generate::timings(&total), Default::default()));
    (generate::usage(&total), timings, summary)
}

/// Retrieves sources for the last user message and puts them in a system message.
async fn ground(
    app: &AppState,
    handle: &hearth_engine::ModelHandle,
    (who, opts): (&Principal, &RagOptions),
    req: &ChatCompletionRequest,
    messages: &mut Vec<hearth_engine::TemplateMessage>,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let rag = app.rag.clone().ok_or_else(|| ApiError::unsupported("rag", "retrieval is not enabled on this server"))?;
    let top_k = match opts.top_k {
        None => 4,
        Some(k @ 1..=50) => k as usize,
        Some(k) => return Err(ApiError::invalid("rag.top_k", format!("rag.top_k must be 1..=50, got {k}"))),
    };
    let question = messages.iter().rev().find(|m| m.role == "user").map(|m| m.content.clone()).unwrap_or_default();
    let max_tokens = req.max_completion_tokens.or(req.max_tokens).unwrap_or(512).clamp(1, 1 << 20) as usize;
    // The whole conversation counts against the context, not only the question.
    let mut conversation_tokens = 0;
    for m in messages.iter() {
        conversation_tokens += handle.count_tokens(m.content.clone()).await? + 4;
    }
    let budget = crate::rag::ground::budget(handle, max_tokens, conversation_tokens);
    let collection = (who, opts.collection.as_str());
    let sources = crate::rag::ground::retrieve(app, &rag, handle, collection, &question, top_k, budget).await?;
    crate::rag::ground::add_sources(messages, &sources);
    Ok(sources.iter().filter_map(|s| serde_json::to_value(s).ok()).collect())
}
