//! Turns wire requests into the engine's validated [`GenerateRequest`].

use crate::http::error::ApiError;
use hearth_engine::{
    GenerateRequest, ModelHandle, PromptInput, SamplingDefaults, SamplingInput, SamplingParams, TemplateMessage,
};
use hearth_protocol::openai::{
    ChatCompletionRequest, ChatMessage, CompletionRequest, MessageContent, Prompt, SamplingFields, StopSpec,
};

/// What differs between the protocols that share this validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Most stop strings a request may give.
    pub max_stops: usize,
    /// `max_tokens` of a text completion that gives none (`None`: until the end).
    pub completion_max_tokens: Option<u32>,
}

/// OpenAI's: at most 4 stop strings; a completion's default `max_tokens` is 16.
pub const OPENAI: Rules = Rules { max_stops: 4, completion_max_tokens: Some(16) };
/// Ollama's and Anthropic's clients send more stop strings (Continue sends a dozen), and
/// Ollama's `num_predict` defaults to "until the end".
pub const LENIENT: Rules = Rules { max_stops: 16, completion_max_tokens: None };
const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

fn sampling(f: SamplingFields, d: &SamplingDefaults) -> Result<SamplingParams, ApiError> {
    let input = SamplingInput {
        temperature: f.temperature,
        top_p: f.top_p,
        top_k: f.top_k,
        min_p: f.min_p,
        repeat_penalty: f.repeat_penalty,
        presence_penalty: f.presence_penalty,
        frequency_penalty: f.frequency_penalty,
        penalty_last_n: f.repeat_last_n,
        seed: f.seed,
        logit_bias: f.logit_bias,
    };
    Ok(SamplingParams::validate(input, d)?)
}

fn stops(stop: Option<StopSpec>, max: usize) -> Result<Vec<String>, ApiError> {
    let v = stop.map(StopSpec::into_vec).unwrap_or_default();
    if v.len() > max {
        return Err(ApiError::invalid("stop", format!("at most {max} stop sequences are allowed, got {}", v.len())));
    }
    Ok(v)
}

fn max_tokens(param: &str, v: Option<i64>) -> Result<Option<u32>, ApiError> {
    match v {
        None => Ok(None),
        Some(n) if n >= 1 => Ok(Some(n.min(u32::MAX as i64) as u32)),
        Some(n) => Err(ApiError::invalid(param, format!("{param} must be at least 1, got {n}"))),
    }
}

/// Most choices one chat request may ask for.
const MAX_CHOICES: i64 = 8;

/// A chat request's `n` (1-8; choices beyond the model's slots run in a later group).
///
/// # Errors
/// A 400 naming `n`.
pub fn choices(n: Option<i64>) -> Result<usize, ApiError> {
    match n {
        None => Ok(1),
        Some(k @ 1..=MAX_CHOICES) => Ok(k as usize),
        Some(k) => Err(ApiError::invalid("n", format!("n must be between 1 and {MAX_CHOICES}, got {k}"))),
    }
}

fn single_choice(n: Option<i64>) -> Result<(), ApiError> {
    match n {
        None | Some(1) => Ok(()),
        Some(n) => Err(ApiError::unsupported("n", format!("only n=1 is supported, got {n}"))),
    }
}

fn message_text(i: usize, m: &ChatMessage) -> Result<String, ApiError> {
    let param = format!("messages[{i}].content");
    match &m.content {
        Some(MessageContent::Text(t)) => Ok(t.clone()),
        Some(MessageContent::Parts(parts)) => {
            let mut out = String::new();
            for (j, p) in parts.iter().enumerate() {
                match (p.kind.as_str(), &p.text) {
                    ("text", Some(t)) => out.push_str(t),
                    ("text", None) => {
                        return Err(ApiError::invalid(&format!("{param}[{j}].text"), "a text part needs `text`"))
                    }
                    (kind, _) => {
                        return Err(ApiError::unsupported(
                            &format!("{param}[{j}].type"),
                            format!("content parts of type `{kind}` are not supported; only `text`"),
                        ))
                    }
                }
            }
            Ok(out)
        }
        None if m.role == "assistant" => Ok(String::new()),
        None => Err(ApiError::invalid(&param, format!("messages[{i}] ({}) must have content", m.role))),
    }
}

/// Checks the messages and their roles.
fn template_messages(messages: &[ChatMessage]) -> Result<Vec<TemplateMessage>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid("messages", "messages must contain at least one message"));
    }
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if !ROLES.contains(&m.role.as_str()) {
                return Err(ApiError::invalid(
                    &format!("messages[{i}].role"),
                    format!("unknown role `{}`; expected one of {}", m.role, ROLES.join(", ")),
                ));
            }
            let tool_calls = match &m.tool_calls {
                Some(calls) if m.role == "assistant" && !calls.is_empty() => {
                    Some(crate::pipeline::tools::history_calls(&format!("messages[{i}].tool_calls"), calls)?)
                }
                _ => None,
            };
            Ok(TemplateMessage {
                role: m.role.clone(),
                content: message_text(i, m)?,
                tool_calls,
                tool_call_id: m.tool_call_id.clone().filter(|_| m.role == "tool"),
                name: m.name.clone(),
            })
        })
        .collect()
}

/// A chat request's fields checked in one pass, before the model is loaded: everything that
/// does not need the model (the prompt is rendered later, by [`chat_request`]).
#[derive(Debug)]
pub struct CheckedChat {
    /// The conversation as the template reads it.
    pub messages: Vec<TemplateMessage>,
    /// Choices (`n`).
    pub n: usize,
    /// Alternatives per token to report (`None`: no log-probabilities).
    pub logprobs: Option<u32>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Sampling, with the server's defaults filled in.
    pub sampling: hearth_engine::SamplingParams,
    /// How long the model stays loaded after this request.
    pub keep_alive: hearth_engine::KeepAlive,
    /// The placement asked for (Ollama's `num_gpu`).
    pub placed: Option<hearth_engine::gpu::GpuLayers>,
    /// Generate past the end-of-generation token.
    pub ignore_eos: bool,
}

/// Checks every field of a chat request that does not need the model.
///
/// # Errors
/// A 400 naming the first field at fault.
pub fn check_chat(req: &ChatCompletionRequest, d: &SamplingDefaults, rules: Rules) -> Result<CheckedChat, ApiError> {
    let n = choices(req.n)?;
    let logprobs = crate::pipeline::logprobs::chat_request(req.logprobs, req.top_logprobs)?;
    let messages = template_messages(&req.messages)?;
    let max_tokens = match req.max_completion_tokens {
        Some(_) => max_tokens("max_completion_tokens", req.max_completion_tokens)?,
        None => max_tokens("max_tokens", req.max_tokens)?,
    };
    Ok(CheckedChat {
        messages,
        n,
        logprobs,
        max_tokens,
        stop: stops(req.stop.clone(), rules.max_stops)?,
        sampling: sampling(req.sampling.clone(), d)?,
        keep_alive: keep_alive(req.keep_alive.as_ref())?,
        placed: num_gpu(req.num_gpu),
        ignore_eos: req.ignore_eos,
    })
}

/// The engine request of a checked chat: its prompt rendered with the model's template (and the
/// tools offered).
///
/// # Errors
/// A 400 for a conversation the template rejects.
pub async fn chat_request(
    handle: &ModelHandle,
    c: CheckedChat,
    tools: Option<&[hearth_engine::Tool]>,
) -> Result<GenerateRequest, ApiError> {
    Ok(GenerateRequest {
        prompt: PromptInput::Chat(handle.render_chat(&c.messages, tools).await?),
        sampling: c.sampling,
        max_tokens: c.max_tokens,
        stop: c.stop,
        ignore_eos: c.ignore_eos,
        logprobs: c.logprobs,
    })
}

/// Builds the engine request for a text completion; also returns the prompt text to echo.
///
/// # Errors
/// A 400 for a missing or unsupported prompt or out-of-range parameters.
pub fn completion_request(
    req: CompletionRequest,
    d: &SamplingDefaults,
    rules: Rules,
) -> Result<(GenerateRequest, Option<String>), ApiError> {
    single_choice(req.n)?;
    let logprobs = crate::pipeline::logprobs::completion_request(req.logprobs.as_ref())?;
    if logprobs.is_some() && req.echo {
        return Err(ApiError::unsupported(
            "echo",
            "echo together with logprobs (the prompt's log-probabilities) is not supported yet",
        ));
    }
    if req.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::unsupported("suffix", "suffix is not supported"));
    }
    let prompt = match req.prompt {
        None => return Err(ApiError::invalid("prompt", "prompt is required")),
        Some(Prompt::Text(t)) => PromptInput::Text { text: t, add_special: true },
        Some(Prompt::Texts(mut v)) if v.len() == 1 => PromptInput::Text { text: v.remove(0), add_special: true },
        Some(Prompt::Tokens(t)) => PromptInput::Tokens(token_ids(&t)?),
        Some(Prompt::TokenLists(v)) if v.len() == 1 => PromptInput::Tokens(token_ids(&v[0])?),
        Some(_) => return Err(ApiError::unsupported("prompt", "only one prompt per request is supported")),
    };
    let echo = match (&prompt, req.echo) {
        (PromptInput::Text { text, .. }, true) => Some(text.clone()),
        _ => None,
    };
    let max = max_tokens("max_tokens", req.max_tokens)?.or(rules.completion_max_tokens);
    let generate = GenerateRequest {
        prompt,
        sampling: sampling(req.sampling, d)?,
        max_tokens: max,
        stop: stops(req.stop, rules.max_stops)?,
        ignore_eos: req.ignore_eos,
        logprobs,
    };
    Ok((generate, echo))
}

fn token_ids(t: &[i64]) -> Result<Vec<u32>, ApiError> {
    if t.is_empty() {
        return Err(ApiError::invalid("prompt", "the prompt is empty"));
    }
    ids("prompt", t)
}

/// Token ids as the engine's type; a negative or huge id is a 400 naming `param`.
pub(crate) fn ids(param: &str, t: &[i64]) -> Result<Vec<u32>, ApiError> {
    t.iter().map(|&x| u32::try_from(x).map_err(|_| ApiError::invalid(param, format!("invalid token id {x}")))).collect()
}

/// A request's `keep_alive`.
///
/// # Errors
/// A 400 naming `keep_alive`.
pub fn keep_alive(v: Option<&serde_json::Value>) -> Result<hearth_engine::KeepAlive, ApiError> {
    v.map_or(Ok(hearth_engine::KeepAlive::Default), |v| {
        hearth_engine::KeepAlive::parse(v).map_err(|m| ApiError::invalid("keep_alive", m))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(json: serde_json::Value) -> ChatCompletionRequest {
        serde_json::from_value(json).unwrap()
    }

    fn check(req: &ChatCompletionRequest) -> Result<CheckedChat, ApiError> {
        check_chat(req, &SamplingDefaults::default(), OPENAI)
    }

    fn param(e: ApiError) -> Option<String> {
        e.body().error.param
    }

    #[test]
    fn empty_messages_and_unknown_roles_are_rejected() {
        assert_eq!(param(check(&chat(serde_json::json!({"messages": []}))).unwrap_err()).as_deref(), Some("messages"));
        let e = check(&chat(
            serde_json::json!({"messages": [{"role": "user", "content": "x"}, {"role": "wizard", "content": "x"}]}),
        ))
        .unwrap_err();
        assert_eq!(param(e).as_deref(), Some("messages[1].role"));
    }

    #[test]
    fn text_parts_are_joined_and_images_refused() {
        let ok = check(&chat(serde_json::json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}))).unwrap();
        assert_eq!(ok.messages[0].content, "ab");
        let e = check(&chat(serde_json::json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}))).unwrap_err();
        assert_eq!(param(e).as_deref(), Some("messages[0].content[0].type"));
    }

    #[test]
    fn n_out_of_range_and_too_many_stops() {
        let e = check(&chat(serde_json::json!({"messages": [{"role": "user", "content": "x"}], "n": 9}))).unwrap_err();
        assert_eq!(param(e).as_deref(), Some("n"));
        assert!(check(&chat(serde_json::json!({"messages": [{"role": "user", "content": "x"}], "n": 3}))).is_ok());
        let e = stops(Some(StopSpec::Many(vec!["a".into(); 5])), OPENAI.max_stops).unwrap_err();
        assert!(stops(Some(StopSpec::Many(vec!["a".into(); 5])), LENIENT.max_stops).is_ok());
        assert_eq!(param(e).as_deref(), Some("stop"));
    }

    #[test]
    fn max_tokens_must_be_positive() {
        assert_eq!(param(max_tokens("max_tokens", Some(0)).unwrap_err()).as_deref(), Some("max_tokens"));
        assert_eq!(max_tokens("max_tokens", Some(5)).unwrap(), Some(5));
    }

    #[test]
    fn completion_prompt_forms() {
        let d = SamplingDefaults::default();
        let r: CompletionRequest = serde_json::from_value(serde_json::json!({"prompt": [1, 2, 3]})).unwrap();
        let (g, _) = completion_request(r, &d, OPENAI).unwrap();
        assert_eq!(g.prompt, PromptInput::Tokens(vec![1, 2, 3]));
        assert_eq!(g.max_tokens, Some(16));
        let r: CompletionRequest = serde_json::from_value(serde_json::json!({"prompt": ["a", "b"]})).unwrap();
        assert_eq!(param(completion_request(r, &d, OPENAI).unwrap_err()).as_deref(), Some("prompt"));
        let r: CompletionRequest = serde_json::from_value(serde_json::json!({"prompt": [-1]})).unwrap();
        assert_eq!(param(completion_request(r, &d, OPENAI).unwrap_err()).as_deref(), Some("prompt"));
    }
}

/// Ollama's `num_gpu` as a placement: `-1` (or any negative) as many as fit, else that many
/// layers (0: the CPU).
pub fn num_gpu(v: Option<i64>) -> Option<hearth_engine::gpu::GpuLayers> {
    use hearth_engine::gpu::GpuLayers;
    v.map(|n| match u32::try_from(n) {
        Ok(n) => GpuLayers::Count(n),
        Err(_) if n < 0 => GpuLayers::Auto,
        Err(_) => GpuLayers::All,
    })
}
