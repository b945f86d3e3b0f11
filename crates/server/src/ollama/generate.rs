//! `POST /api/chat`, `POST /api/generate` and `POST /api/generate/stream`: Ollama's requests
//! translated into the chat (or, with `raw`, the completion) request every protocol shares,
//! answered as NDJSON (the default) or one object.

use super::convert;
use super::stream::{Ndjson, Shape};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::AnyJson;
use crate::pipeline::generate;
use crate::pipeline::prepare::Prepared;
use crate::pipeline::validate;
use crate::services::owner::Principal;
use crate::services::state::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use hearth_engine::{KeepAlive, ModelKind};
use hearth_protocol::ollama::{ChatRequest, Error, GenerateRequest, GenerateResponse};
use hearth_protocol::openai::{ChatCompletionRequest, ChatMessage, CompletionRequest, MessageContent, Prompt};
use serde_json::Value;
use std::time::Instant;

/// Chats: NDJSON lines of `{"message": {"role", "content", "tool_calls"?}, "done": false}`, then
/// a line with `done: true`, `done_reason` and the counts; with `stream: false`, one object.
/// Empty `messages` loads the model (`done_reason: load`; `keep_alive: 0` unloads it).
///
/// # Errors
/// `{"error": "..."}` with Ollama's status codes: 400 bad input, 404 unknown model.
#[utoipa::path(post, path = "/api/chat", tag = "ollama", request_body = ChatRequest, responses((status = 200, description = "NDJSON lines (the default), or one object with `stream: false`", body = hearth_protocol::ollama::ChatResponse), (status = 400, description = "Bad request", body = Error), (status = 404, description = "Unknown model", body = Error)))]
pub async fn chat(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    AnyJson(req): AnyJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    convert::no_thinking(req.think.as_ref(), &req.model)?;
    let model = super::model_name(&req.model).to_string();
    let messages = req.messages.unwrap_or_default();
    if messages.is_empty() {
        let who = Principal::of(caller.as_ref().map(|c| &c.0));
        let _admitted = generate::admit(&app, caller)?;
        return lifecycle(&app, &who, &model, req.keep_alive.as_ref(), Shape::Chat, arrived).await;
    }
    let (sampling, max_tokens, stop) = convert::options(req.options.as_ref())?;
    let wire = ChatCompletionRequest {
        model,
        messages: convert::messages(messages)?,
        stream: req.stream.unwrap_or(true),
        max_tokens,
        stop,
        tools: req.tools,
        response_format: convert::format(req.format.as_ref())?,
        keep_alive: req.keep_alive,
        num_gpu: req.options.as_ref().and_then(|o| o.num_gpu),
        sampling,
        ..ChatCompletionRequest::default()
    };
    let p = crate::pipeline::prepare::prepare(&app, caller, wire, validate::LENIENT).await?;
    respond(p, Shape::Chat, arrived).await
}

/// Completes a prompt, with the model's template (a `system` message and the prompt as the
/// user's) or, with `raw`, as it is. Streams NDJSON `{"response": "...", "done": false}` lines by
/// default. An empty prompt loads the model (`keep_alive: 0` unloads it).
///
/// # Errors
/// As `/api/chat`; `suffix`, `images` and a `template` of its own are refused with a 400.
#[utoipa::path(post, path = "/api/generate", tag = "ollama", request_body = GenerateRequest, responses((status = 200, description = "NDJSON lines (the default), or one object with `stream: false`", body = GenerateResponse), (status = 400, description = "Bad request", body = Error), (status = 404, description = "Unknown model", body = Error)))]
pub async fn generate(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    AnyJson(req): AnyJson<GenerateRequest>,
) -> Result<Response, ApiError> {
    run_generate(&app, caller, req).await
}

/// The same generation as `/api/generate`, always streamed (the seed plan's spelling;
/// `/api/generate` is canonical).
///
/// # Errors
/// As `/api/generate`.
#[utoipa::path(post, path = "/api/generate/stream", tag = "ollama", request_body = GenerateRequest, responses((status = 200, description = "NDJSON lines of GenerateResponse", body = GenerateResponse), (status = 400, description = "Bad request", body = Error), (status = 404, description = "Unknown model", body = Error)))]
pub async fn generate_stream(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    AnyJson(mut req): AnyJson<GenerateRequest>,
) -> Result<Response, ApiError> {
    req.stream = Some(true);
    run_generate(&app, caller, req).await
}

async fn run_generate(
    app: &AppState,
    caller: Option<Extension<Caller>>,
    req: GenerateRequest,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    convert::no_thinking(req.think.as_ref(), &req.model)?;
    convert::no_images(req.images.as_ref(), "images")?;
    if req.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::unsupported("suffix", "suffix (fill-in-the-middle) is not supported yet"));
    }
    if req.template.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::unsupported(
            "template",
            "a template of the request's own is not supported; the model's is used",
        ));
    }
    let model = super::model_name(&req.model).to_string();
    let prompt = req.prompt.unwrap_or_default();
    if prompt.is_empty() {
        let who = Principal::of(caller.as_ref().map(|c| &c.0));
        let _admitted = generate::admit(app, caller)?;
        return lifecycle(app, &who, &model, req.keep_alive.as_ref(), Shape::Generate, arrived).await;
    }
    let (sampling, max_tokens, stop) = convert::options(req.options.as_ref())?;
    let num_gpu = req.options.as_ref().and_then(|o| o.num_gpu);
    let stream = req.stream.unwrap_or(true);
    let response_format = convert::format(req.format.as_ref())?;
    let p = if req.raw.unwrap_or(false) {
        let wire = CompletionRequest {
            model,
            prompt: Some(Prompt::Text(prompt)),
            stream,
            max_tokens,
            stop,
            response_format,
            keep_alive: req.keep_alive,
            num_gpu,
            sampling,
            ..CompletionRequest::default()
        };
        crate::openai::completions::prepare(app, caller, wire, validate::LENIENT).await?.0
    } else {
        let text = |role: &str, t: String| ChatMessage {
            role: role.into(),
            content: Some(MessageContent::Text(t)),
            ..ChatMessage::default()
        };
        let mut messages: Vec<ChatMessage> = req.system.map(|s| text("system", s)).into_iter().collect();
        messages.push(text("user", prompt));
        let wire = ChatCompletionRequest {
            model,
            messages,
            stream,
            max_tokens,
            stop,
            response_format,
            keep_alive: req.keep_alive,
            num_gpu,
            sampling,
            ..ChatCompletionRequest::default()
        };
        crate::pipeline::prepare::prepare(app, caller, wire, validate::LENIENT).await?
    };
    respond(p, Shape::Generate, arrived).await
}

/// Streams or collects an admitted request as Ollama's objects.
async fn respond(p: Prepared, shape: Shape, arrived: Instant) -> Result<Response, ApiError> {
    let fmt = Ndjson::new(shape, p.model.clone(), arrived, p.tools);
    if p.stream {
        return Ok(crate::pipeline::stream::stream_response(p.model, p.started, fmt));
    }
    let c = generate::collect(p.started).await?;
    let body = fmt.whole(c.text, c.finish, &c.completion);
    Ok(generate::answer(p.model, c.summary, body))
}

/// A request without input: load the model (or unload it with `keep_alive: 0`), and answer
/// with one done object whose `done_reason` says which.
async fn lifecycle(
    app: &AppState,
    who: &Principal,
    model: &str,
    keep_alive: Option<&Value>,
    shape: Shape,
    arrived: Instant,
) -> Result<Response, ApiError> {
    let keep = validate::keep_alive(keep_alive)?;
    let (id, reason) = if keep == KeepAlive::For(std::time::Duration::ZERO) {
        if !who.manages_models() {
            return Err(ApiError::Forbidden("unloading a model needs an admin API key".into()));
        }
        let id = who.models(&app.models).resolve(model)?.id.clone();
        match app.models.unload(&id).await {
            Ok(_) => {}
            // Running requests: it goes as soon as they end (an expiry of now), as in Ollama.
            Err(hearth_engine::EngineError::Busy { .. }) => {
                app.models.acquire(&id, None, keep).await?;
            }
            Err(e) => return Err(e.into()),
        }
        (id, "unload")
    } else {
        (who.models(&app.models).acquire(model, Some(ModelKind::Causal), keep).await?.info.id.clone(), "load")
    };
    // Done, without counts: nothing was evaluated.
    let mut v = Ndjson::new(shape, id.clone(), arrived, None).object(String::new(), None, None);
    v["done"] = true.into();
    v["done_reason"] = reason.into();
    Ok(generate::answer(id, Default::default(), v))
}
