//! `POST /v1/completions` (legacy text completion).

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::pipeline::generate;
use crate::pipeline::prepare::Prepared;
use crate::pipeline::stream::StreamFormat;
use crate::pipeline::validate;
use crate::services::state::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use hearth_engine::{Completion, FinishReason, ModelKind};
use hearth_protocol::openai::ErrorBody;
use hearth_protocol::openai::{CompletionChoice, CompletionRequest, CompletionResponse};

/// Handles a text completion, streamed or not.
///
/// # Errors
/// OpenAI-shaped errors for bad input, unknown models and engine failures.
#[utoipa::path(post, path = "/v1/completions", tag = "openai", request_body = CompletionRequest, responses((status = 200, description = "A text completion, or with `stream: true` server-sent events of it", body = CompletionResponse), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown model", body = ErrorBody), (status = 429, description = "Too many requests or over the key's rate limit", body = ErrorBody), (status = 503, description = "Overloaded, no room, or shutting down", body = ErrorBody)))]
pub async fn completions(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    let (p, echo) = prepare(&app, caller, req, validate::OPENAI).await?;
    let (started, want_logprobs, stream) = (p.started, p.logprobs, p.stream);
    let mut fmt = TextStream {
        id: crate::http::ids::new_id("cmpl"),
        created: crate::http::ids::now_secs(),
        model: p.model,
        include_usage,
        echo,
        logprobs: want_logprobs.then(Vec::new),
        offset: 0,
    };
    if stream {
        return Ok(crate::pipeline::stream::stream_response(fmt.model.clone(), started, fmt));
    }
    let done = generate::collect(started).await?;
    let text = fmt.echo.take().unwrap_or_default() + &done.text;
    let mut body = fmt.object(text, Some(done.finish));
    if want_logprobs {
        body.choices[0].logprobs = Some(crate::pipeline::logprobs::completion(&done.logprobs, 0));
    }
    body.usage = Some(Some(generate::usage(&done.completion)));
    body.timings = Some(generate::timings(&done.completion));
    Ok(generate::answer(fmt.model.clone(), done.summary, body))
}

/// Validates a completion request, loads the model and submits the prompt; returns once the
/// engine admitted it, with the prompt text to echo (when asked).
///
/// # Errors
/// As [`completions`].
pub async fn prepare(
    app: &AppState,
    caller: Option<Extension<Caller>>,
    req: CompletionRequest,
    rules: validate::Rules,
) -> Result<(Prepared, Option<String>), ApiError> {
    let name = req.model.clone();
    let keep_alive = validate::keep_alive(req.keep_alive.as_ref())?;
    let stream = req.stream;
    let constraint = crate::pipeline::structured::constraint(req.response_format.as_ref(), req.grammar.as_deref())?;
    let grammar = crate::pipeline::structured::grammar(&app.models, constraint.as_ref(), req.ignore_eos).await?;
    let placed = validate::num_gpu(req.num_gpu);
    let (mut gen, echo) = validate::completion_request(req, &app.models.settings().sampling, rules)?;
    let logprobs = gen.logprobs.is_some();
    gen.sampling.grammar = grammar;
    let who = crate::services::owner::Principal::of(caller.as_ref().map(|c| &c.0));
    let admission = generate::admit(app, caller)?;
    let handle = who.models(&app.models).acquire_placed(&name, Some(ModelKind::Causal), keep_alive, placed).await?;
    let started = generate::start(app, &handle, gen, admission).await?;
    let model = handle.info.id.clone();
    let p = Prepared { model, started, tools: None, logprobs, citations: None, include_usage: false, stream };
    Ok((p, echo))
}

/// Frames text completion chunks.
struct TextStream {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    /// Prompt text to send first when `echo` was asked for.
    echo: Option<String>,
    /// With `logprobs`: the reports for the next text.
    logprobs: Option<Vec<hearth_engine::TokenLogprob>>,
    /// Bytes of text streamed so far (for `text_offset`).
    offset: usize,
}

impl TextStream {
    fn object(&self, text: String, finish: Option<FinishReason>) -> CompletionResponse {
        CompletionResponse {
            id: self.id.clone(),
            object: "text_completion".into(),
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: crate::FINGERPRINT.into(),
            choices: vec![CompletionChoice {
                index: 0,
                text,
                logprobs: None,
                finish_reason: finish.map(|f| f.as_str().into()),
            }],
            usage: None,
            timings: None,
        }
    }

    fn frame(&self, text: String, finish: Option<FinishReason>) -> String {
        let mut o = self.object(text, finish);
        o.usage = self.include_usage.then_some(None);
        crate::pipeline::stream::sse_frame(&serde_json::to_string(&o).unwrap_or_default())
    }
}

impl StreamFormat for TextStream {
    fn opening(&mut self, _choices: usize) -> Vec<String> {
        match self.echo.take() {
            Some(p) => vec![self.frame(p, None)],
            None => Vec::new(),
        }
    }

    fn text(&mut self, _index: usize, text: String) -> Vec<String> {
        let lp = self.logprobs.as_mut().map(|l| crate::pipeline::logprobs::completion(&std::mem::take(l), self.offset));
        self.offset += text.len();
        let mut o = self.object(text, None);
        o.usage = self.include_usage.then_some(None);
        o.choices[0].logprobs = lp;
        vec![crate::pipeline::stream::sse_frame(&serde_json::to_string(&o).unwrap_or_default())]
    }

    fn logprobs(&mut self, _index: usize, tokens: Vec<hearth_engine::TokenLogprob>) {
        if let Some(l) = self.logprobs.as_mut() {
            l.extend(tokens);
        }
    }

    fn finish(&mut self, _index: usize, finish: FinishReason) -> Vec<String> {
        vec![self.frame(String::new(), Some(finish))]
    }

    fn done(&mut self, completion: &Completion) -> Vec<String> {
        let mut out = Vec::new();
        if self.include_usage {
            let mut o = self.object(String::new(), None);
            o.choices.clear();
            o.usage = Some(Some(generate::usage(completion)));
            o.timings = Some(generate::timings(completion));
            out.push(crate::pipeline::stream::sse_frame(&serde_json::to_string(&o).unwrap_or_default()));
        }
        out
    }
}
