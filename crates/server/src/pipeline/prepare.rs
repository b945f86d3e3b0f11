//! A chat request in any protocol's wire form, translated into OpenAI's chat request, becomes
//! the engine's: validated once, the model acquired, retrieval added, the prompt rendered and
//! submitted. What comes back ([`Prepared`]) is framed by each protocol.

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::pipeline::{generate, validate};
use crate::services::owner::Principal;
use crate::services::state::AppState;
use axum::Extension;
use hearth_engine::{ModelKind, ToolFamily};
use hearth_protocol::openai::ChatCompletionRequest;

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
/// Errors in OpenAI's shape for bad input, unknown models and engine failures.
pub async fn prepare(
    app: &AppState,
    caller: Option<Extension<Caller>>,
    req: ChatCompletionRequest,
    rules: validate::Rules,
) -> Result<Prepared, ApiError> {
    let mut checked = validate::check_chat(&req, &app.models.settings().sampling, rules)?;
    let constraint = crate::pipeline::structured::constraint(req.response_format.as_ref(), req.grammar.as_deref())?;
    let tools =
        crate::pipeline::tools::tool_request(req.tools.as_deref(), req.tool_choice.as_ref(), req.parallel_tool_calls)?;
    if tools.is_some() && constraint.is_some() {
        return Err(ApiError::unsupported(
            "response_format",
            "response_format together with tools is not supported yet",
        ));
    }
    let grammar = crate::pipeline::structured::grammar(&app.models, constraint.as_ref(), req.ignore_eos).await?;
    let who = Principal::of(caller.as_ref().map(|c| &c.0));
    let admission = generate::admit(app, caller)?;
    let scope = who.models(&app.models);
    let handle = scope.acquire_placed(&req.model, Some(ModelKind::Causal), checked.keep_alive, checked.placed).await?;
    let citations = match &req.rag {
        Some(opts) => {
            Some(crate::pipeline::ground::ground(app, &handle, (&who, opts), &req, &mut checked.messages).await?)
        }
        None => None,
    };
    let (stream, n) = (req.stream, checked.n);
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    let family = handle.tool_family();
    let grammar = match &tools {
        Some(t) => Some(crate::pipeline::structured::tool_grammar(&app.models, family, t, req.ignore_eos).await?),
        None => grammar,
    };
    let offered = tools.as_ref().map(|t| t.tools.as_slice());
    let mut gen = validate::chat_request(&handle, checked, offered).await?;
    gen.sampling.grammar = grammar;
    let logprobs = gen.logprobs.is_some();
    let started = generate::start_n(app, &handle, gen, n, admission).await?;
    let tools = tools.is_some().then_some(family);
    Ok(Prepared { model: handle.info.id.clone(), started, tools, logprobs, citations, include_usage, stream })
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
