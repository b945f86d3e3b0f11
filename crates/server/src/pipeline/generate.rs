//! The path both generation endpoints share: submit, wait for admission, then either collect
//! the token events (non-streaming) or frame them as server-sent events (streaming).

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::metrics::{self, metrics};
use crate::http::middleware::{ServedModel, Summary};
use crate::services::state::AppState;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use hearth_engine::{
    Completion, EngineError, Event, FinishReason, GenerateRequest, ModelHandle, PromptInput, RenderedPrompt,
    TokenLogprob,
};
use hearth_protocol::openai::{PromptTokensDetails, Timings, Usage};
use std::time::Instant;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

/// A request the engine has admitted.
#[derive(Debug)]
pub struct Started {
    /// Its remaining events.
    pub rx: mpsc::Receiver<Event>,
    /// The events of further choices from the same prompt (`n > 1`).
    pub more: Vec<mpsc::Receiver<Event>>,
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Of those, tokens found in the KV cache.
    pub cached_tokens: u32,
    /// The admission permit and the key's share of it, released when the answer (or its
    /// stream) ends.
    pub permit: (OwnedSemaphorePermit, Option<crate::services::share::Share>),
    /// Times tokens for the latency metrics.
    pub clock: TokenClock,
    /// When the request runs out of time (`--request-timeout`).
    pub deadline: tokio::time::Instant,
    /// Turns true when the server's shutdown grace is over.
    pub stop: crate::http::stop::StopSignal,
}

/// Observes time to first token and the gaps between tokens of one request.
#[derive(Debug)]
pub struct TokenClock {
    model: String,
    arrived: Instant,
    last: Option<Instant>,
    /// Milliseconds from arrival to the first text.
    first_ms: Option<f64>,
    /// The key charged for the tokens, as they are produced.
    caller: Option<Caller>,
    /// Tokens charged to the key so far.
    charged: u64,
}

impl TokenClock {
    /// A clock for a request to `model` that arrived at `arrived`.
    pub fn new(model: &str, arrived: Instant) -> Self {
        Self { model: model.to_string(), arrived, last: None, first_ms: None, caller: None, charged: 0 }
    }

    /// A clock that charges `caller` for the request's tokens as they are produced, starting
    /// with its `prompt_tokens`: a stream that is cancelled, times out or fails still pays for
    /// the work it caused.
    pub fn charged_to(mut self, caller: Option<Caller>, prompt_tokens: u32) -> Self {
        self.caller = caller;
        self.charge(u64::from(prompt_tokens));
        self
    }

    fn charge(&mut self, tokens: u64) {
        if let Some(caller) = &self.caller {
            caller.charge(tokens);
            self.charged += tokens;
        }
    }

    /// Charges `tokens` more (another choice's), without timing them.
    pub fn charge_more(&mut self, tokens: u32) {
        self.charge(u64::from(tokens));
    }

    /// Records the arrival of text that completes `tokens` tokens (charged to the key).
    pub fn token(&mut self, tokens: u32) {
        self.charge(u64::from(tokens));
        let now = Instant::now();
        let (name, since) = match self.last {
            None => (metrics::TTFT_SECONDS, self.arrived),
            Some(t) => (metrics::ITL_SECONDS, t),
        };
        let secs = (now - since).as_secs_f64();
        metrics().observe(name, &[("model", &self.model)], secs);
        self.first_ms.get_or_insert(secs * 1000.0);
        self.last = Some(now);
    }

    /// Records a finished request's token counts; its summary for the log.
    pub fn done(&self, finish: FinishReason, c: &Completion) -> Summary {
        let m = metrics();
        m.inc(metrics::PROMPT_TOKENS, &[("model", &self.model)], u64::from(c.prompt_tokens));
        m.inc(metrics::GENERATED_TOKENS, &[("model", &self.model)], u64::from(c.completion_tokens));
        // What the text events did not count (tokens whose text never went out: a stop string's,
        // the end of generation).
        let used = u64::from(c.prompt_tokens) + u64::from(c.completion_tokens);
        if let Some(caller) = &self.caller {
            caller.charge(used.saturating_sub(self.charged));
        }
        Summary {
            prompt_tokens: c.prompt_tokens,
            completion_tokens: c.completion_tokens,
            ttft_ms: self.first_ms.unwrap_or(c.prompt_ms),
            tokens_per_second: c.tokens_per_second(),
            finish: finish.as_str(),
        }
    }
}

/// A request let in at the edge: its permit and the API key it is charged to.
#[derive(Debug)]
pub struct Admission {
    /// Released when the answer (or its stream) ends.
    pub permit: OwnedSemaphorePermit,
    /// The key's share of the permits, given back with the permit.
    pub share: Option<crate::services::share::Share>,
    /// The key whose tokens/minute the request uses, when keys are configured.
    pub caller: Option<Caller>,
}

/// Takes an admission permit, or refuses with 429 when the server is at its limit.
///
/// # Errors
/// [`ApiError::TooManyRequests`].
pub fn admit(app: &AppState, caller: Option<Extension<Caller>>) -> Result<Admission, ApiError> {
    let caller = caller.map(|Extension(c)| c);
    let total = app.limits.max_concurrent_requests;
    let share = crate::services::share::take(&app.shares.requests, caller.as_ref(), 1, total, "requests in flight")?;
    let permit = app.permits.clone().try_acquire_owned().map_err(|_| ApiError::TooManyRequests)?;
    Ok(Admission { permit, share, caller })
}

/// Submits a request and waits until it is admitted, so that errors found on admission
/// (context too long, bad token ids) are plain HTTP errors, also for streaming requests.
///
/// # Errors
/// Whatever the engine refuses the request with.
pub async fn start(
    app: &AppState,
    handle: &ModelHandle,
    req: GenerateRequest,
    admission: Admission,
) -> Result<Started, ApiError> {
    start_n(app, handle, req, 1, admission).await
}

/// As [`start`], for `n` choices from one prompt.
///
/// # Errors
/// As [`start`].
pub async fn start_n(
    app: &AppState,
    handle: &ModelHandle,
    req: GenerateRequest,
    n: usize,
    admission: Admission,
) -> Result<Started, ApiError> {
    let Admission { permit, share, caller } = admission;
    let permit = (permit, share);
    if app.log_prompts {
        match &req.prompt {
            PromptInput::Text { text, .. } | PromptInput::Chat(RenderedPrompt { text, .. }) => {
                tracing::debug!(prompt = %text, "prompt");
            }
            PromptInput::Tokens(t) => tracing::debug!(prompt_tokens = ?t, "prompt"),
        }
    }
    let arrived = Instant::now();
    // Tokenized and checked here, off the model's thread; the worker gets token ids.
    let req = handle.validate(req).await?;
    let deadline = tokio::time::Instant::from_std(arrived + app.limits.request_timeout);
    // Choices beyond the model's slots go in later groups (seeds continuing), which run as slots
    // free up and find the prompt in the prefix cache by then.
    let group = n.clamp(1, handle.loaded.n_slots.max(1));
    let mut all = handle.submit_n(req.clone(), group)?.into_iter();
    let mut later = Vec::new();
    for start in (group..n).step_by(group) {
        let mut r = req.clone();
        r.sampling.seed = r.sampling.seed.wrapping_add(start as u32);
        later.extend(handle.submit_n(r, group.min(n - start))?);
    }
    let mut rx = all.next().ok_or(EngineError::WorkerFailed)?;
    // Dropping `rx` on timeout cancels the queued request in the engine.
    let first = tokio::time::timeout(app.limits.queue_timeout, rx.recv()).await.map_err(|_| ApiError::QueueTimeout)?;
    match first {
        Some(Event::Started { prompt_tokens, cached_tokens }) => {
            let clock = TokenClock::new(&handle.info.id, arrived).charged_to(caller, prompt_tokens);
            let mut more: Vec<_> = all.collect();
            for r in &mut more {
                // The engine admits a group's choices together: their Started is already there.
                match r.recv().await {
                    Some(Event::Started { .. }) => {}
                    Some(Event::Error(e)) => return Err(e.into()),
                    _ => return Err(EngineError::WorkerFailed.into()),
                }
            }
            // Later groups' Started come when they run; the readers skip it.
            more.extend(later);
            Ok(Started { rx, more, prompt_tokens, cached_tokens, permit, clock, deadline, stop: app.stop.clone() })
        }
        Some(Event::Error(e)) => Err(e.into()),
        Some(other) => {
            tracing::error!(event = ?other, "engine sent an event before Started");
            Err(ApiError::Internal)
        }
        None => Err(EngineError::WorkerFailed.into()),
    }
}

/// A whole answer.
#[derive(Debug)]
pub struct Collected {
    /// All generated text.
    pub text: String,
    /// Its tokens' log-probabilities, when the request asked for them.
    pub logprobs: Vec<TokenLogprob>,
    /// Why it ended.
    pub finish: FinishReason,
    /// Counts and timings.
    pub completion: Completion,
    /// For the log line.
    pub summary: Summary,
}

/// Collects every event of an admitted request.
///
/// # Errors
/// The engine's error if generation fails midway.
pub async fn collect(s: Started) -> Result<Collected, ApiError> {
    let mut all = collect_n(s).await?;
    all.truncate(1);
    all.pop().ok_or_else(|| EngineError::WorkerFailed.into())
}

/// Collects every choice of an admitted request, in order; each choice's summary is its own,
/// and the metrics and the key's tokens count all of them once.
///
/// # Errors
/// The engine's error if any choice fails.
pub async fn collect_n(mut s: Started) -> Result<Vec<Collected>, ApiError> {
    let (deadline, stop) = (s.deadline, s.stop.clone());
    let more = std::mem::take(&mut s.more);
    let others = futures::future::join_all(more.into_iter().map(|mut rx| {
        let mut stop = stop.clone();
        async move { drain(&mut rx, deadline, &mut stop, None).await }
    }));
    let (first, others) = tokio::join!(drain(&mut s.rx, deadline, &mut s.stop, Some(&mut s.clock)), others);
    let mut all = vec![first?];
    for o in others {
        all.push(o?);
    }
    let summary = s.clock.done(all[0].finish, &total(&all));
    for c in &mut all {
        c.summary = summary.clone();
    }
    Ok(all)
}

/// The counts of several choices from one prompt: the first choice's, with every choice's
/// generated tokens.
pub fn total(all: &[Collected]) -> Completion {
    let mut total = all.first().map(|c| c.completion.clone()).unwrap_or_default();
    total.completion_tokens = all.iter().map(|c| c.completion.completion_tokens).sum();
    total
}

/// Reads one choice's events to its end.
async fn drain(
    rx: &mut mpsc::Receiver<Event>,
    deadline: tokio::time::Instant,
    stop: &mut crate::http::stop::StopSignal,
    mut clock: Option<&mut TokenClock>,
) -> Result<Collected, ApiError> {
    let mut text = String::new();
    let mut logprobs = Vec::new();
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout_at(deadline, rx.recv()) => next.map_err(|_| ApiError::Timeout)?,
            () = crate::http::stop::stopped(stop) => return Err(ApiError::ShuttingDown),
        };
        match next {
            Some(Event::Text { text: t, tokens }) => {
                match clock.as_deref_mut() {
                    Some(c) if t.is_empty() => c.charge_more(tokens),
                    Some(c) => c.token(tokens),
                    None => {}
                }
                text.push_str(&t);
            }
            Some(Event::Logprobs(l)) => logprobs.extend(l),
            Some(Event::Done { finish, completion }) => {
                return Ok(Collected { text, logprobs, finish, completion, summary: Summary::default() });
            }
            Some(Event::Error(e)) => return Err(e.into()),
            Some(Event::Started { .. }) => {}
            None => return Err(EngineError::WorkerFailed.into()),
        }
    }
}

/// A non-streamed answer with the extensions the middleware logs and counts.
pub fn answer(model: String, summary: Summary, body: impl serde::Serialize) -> Response {
    let mut res = axum::Json(body).into_response();
    res.extensions_mut().insert(ServedModel(model));
    res.extensions_mut().insert(summary);
    res
}

/// OpenAI usage from the engine's counts.
pub fn usage(c: &Completion) -> Usage {
    Usage {
        prompt_tokens: c.prompt_tokens,
        completion_tokens: c.completion_tokens,
        total_tokens: c.prompt_tokens + c.completion_tokens,
        prompt_tokens_details: Some(PromptTokensDetails { cached_tokens: c.cached_tokens }),
    }
}

/// Hearth's timings field from the engine's counts.
pub fn timings(c: &Completion) -> Timings {
    Timings {
        prompt_n: c.prompt_tokens - c.cached_tokens,
        prompt_ms: c.prompt_ms,
        predicted_n: c.completion_tokens,
        predicted_ms: c.generation_ms,
        predicted_per_second: c.tokens_per_second(),
        cached_n: c.cached_tokens,
    }
}
