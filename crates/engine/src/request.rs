//! What goes into the engine and what comes out of it: plain data, no llama or HTTP types.

use crate::backend::Token;
use crate::error::{EngineError, Invalid};
use crate::sampling::SamplingParams;
use crate::tokenizer::Tokenizer;
use std::ops::Range;

/// The prompt of a generation request.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptInput {
    /// Text the client wrote whole (a raw completion prompt): control tokens spelled in it are
    /// parsed.
    Text {
        /// The prompt text.
        text: String,
        /// Let the tokenizer add BOS/EOS as the model wants.
        add_special: bool,
    },
    /// A conversation rendered by the model's chat template.
    Chat(RenderedPrompt),
    /// Token ids given by the client.
    Tokens(Vec<u32>),
}

/// A prompt rendered by a chat template, with the byte ranges that came from the client
/// (message text, tool results, documents). Only the template's own text may spell control
/// tokens; in these ranges they are tokenized as text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RenderedPrompt {
    /// The whole prompt.
    pub text: String,
    /// The client's ranges of `text`, sorted and not overlapping.
    pub untrusted: Vec<Range<usize>>,
}

/// A generation request ready for a worker: its prompt tokenized and checked against the
/// vocabulary, and its length against the context window. Built by
/// [`crate::ModelHandle::validate`]; the worker accepts nothing else.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ValidGenerateRequest {
    /// The prompt's tokens (at least one).
    pub prompt: Vec<Token>,
    /// Most tokens to generate (within the window and the server's cap).
    pub max_tokens: u32,
    /// How to sample.
    pub sampling: SamplingParams,
    /// Stop strings, never emitted.
    pub stop: Vec<String>,
    /// Keep generating past end-of-generation tokens (benchmarks).
    pub ignore_eos: bool,
    /// Report log-probabilities with this many alternatives.
    pub logprobs: Option<u32>,
}

/// A validated generation request: sampling checked, stop strings bounded.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: PromptInput,
    /// How to sample.
    pub sampling: SamplingParams,
    /// Upper bound on generated tokens; `None` = until the context (or the server cap) is full.
    pub max_tokens: Option<u32>,
    /// Stop strings, never emitted.
    pub stop: Vec<String>,
    /// Keep generating past end-of-generation tokens (benchmarks).
    pub ignore_eos: bool,
    /// Report each generated token's log-probability and this many alternatives (0-20);
    /// `None` reports nothing (and costs nothing).
    pub logprobs: Option<u32>,
}

impl GenerateRequest {
    /// Tokenizes the prompt and checks it against the window of `n_ctx` tokens; `cap` is the
    /// server's limit on generated tokens. Runs on the request's side (see `ModelHandle`).
    ///
    /// # Errors
    /// [`EngineError::InvalidParam`] for an empty prompt or ids outside the vocabulary,
    /// [`EngineError::ContextLengthExceeded`] when prompt and `max_tokens` do not fit.
    pub fn validate(self, tok: &Tokenizer, n_ctx: u32, cap: Option<u32>) -> Result<ValidGenerateRequest, EngineError> {
        self.check_stops()?;
        let prompt = match self.prompt {
            PromptInput::Text { text, add_special } => tok.tokenize(&text, add_special),
            PromptInput::Chat(p) => tok.tokenize_marked(&p.text, &p.untrusted, true),
            PromptInput::Tokens(t) => {
                tok.check(&t, "prompt")?;
                t
            }
        };
        if prompt.is_empty() {
            return Err(EngineError::invalid("prompt", Invalid::EmptyPrompt));
        }
        let p = u32::try_from(prompt.len()).unwrap_or(u32::MAX);
        let room = n_ctx.saturating_sub(p);
        let max_tokens = match self.max_tokens {
            Some(m) if m > room => {
                return Err(EngineError::ContextLengthExceeded { prompt_tokens: p, max_tokens: m, n_ctx })
            }
            Some(m) => m,
            None if room == 0 => {
                return Err(EngineError::ContextLengthExceeded { prompt_tokens: p, max_tokens: 1, n_ctx })
            }
            None => room,
        };
        Ok(ValidGenerateRequest {
            prompt,
            max_tokens: cap.map_or(max_tokens, |c| max_tokens.min(c)),
            sampling: self.sampling,
            stop: self.stop,
            ignore_eos: self.ignore_eos,
            logprobs: self.logprobs,
        })
    }

    /// Refuses a prompt whose text cannot fit a window of `n_ctx` tokens however it
    /// tokenizes, before anything is tokenized.
    ///
    /// # Errors
    /// [`EngineError::PromptTooLong`].
    pub fn refuse_early(&self, tok: &Tokenizer, n_ctx: u32) -> Result<(), EngineError> {
        self.check_stops()?;
        let min_tokens = self.text().map_or(0, |t| tok.min_tokens(t));
        if min_tokens > u64::from(n_ctx) {
            return Err(EngineError::PromptTooLong { min_tokens, n_ctx });
        }
        Ok(())
    }

    /// Stop strings are matched on the model's thread after every token: each is bounded.
    fn check_stops(&self) -> Result<(), EngineError> {
        if self.stop.iter().any(|s| s.len() > crate::limits::MAX_STOP_BYTES) {
            return Err(EngineError::invalid("stop", Invalid::Limit(crate::limits::Limit::StopBytes)));
        }
        Ok(())
    }

    /// Bytes of prompt text to tokenize (to decide where tokenizing runs).
    pub fn text_bytes(&self) -> usize {
        self.text().map_or(0, str::len)
    }

    /// The prompt's text to tokenize, if it is text.
    fn text(&self) -> Option<&str> {
        match &self.prompt {
            PromptInput::Text { text, .. } => Some(text),
            PromptInput::Chat(p) => Some(&p.text),
            PromptInput::Tokens(_) => None,
        }
    }
}

/// Most alternatives one token's log-probability report may list.
pub const MAX_TOP_LOGPROBS: u32 = 20;

/// A token's log-probability under the model (its distribution before the sampling chain).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TokenLogprob {
    /// The token's text (invalid UTF-8 replaced; see `bytes`).
    pub token: String,
    /// The token's bytes.
    pub bytes: Vec<u8>,
    /// Natural log of its probability.
    pub logprob: f32,
    /// The most likely tokens at this position, most likely first.
    pub top: Vec<TopLogprob>,
}

/// One alternative of a [`TokenLogprob`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TopLogprob {
    /// The token's text.
    pub token: String,
    /// The token's bytes.
    pub bytes: Vec<u8>,
    /// Natural log of its probability.
    pub logprob: f32,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FinishReason {
    /// End-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the context window was reached.
    Length,
}

impl FinishReason {
    /// OpenAI's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// Token counts and timings of a finished request.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Completion {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Prompt tokens reused from the KV cache.
    pub cached_tokens: u32,
    /// Tokens generated (the EOG token not counted).
    pub completion_tokens: u32,
    /// Milliseconds spent on the prompt (admission to first sampled token).
    pub prompt_ms: f64,
    /// Milliseconds from the first to the last sampled token.
    pub generation_ms: f64,
    /// The stop string that ended generation (`None`: end-of-generation token or a limit).
    pub stop_sequence: Option<String>,
}

impl Completion {
    /// Generated tokens per second.
    pub fn tokens_per_second(&self) -> f64 {
        if self.generation_ms > 0.0 && self.completion_tokens > 1 {
            (self.completion_tokens - 1) as f64 * 1000.0 / self.generation_ms
        } else {
            0.0
        }
    }
}

/// Events a sequence sends back, in this order: `Started`, `Text`*, then `Done` or `Error`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The request was admitted and its prompt counted.
    Started {
        /// Tokens in the prompt.
        prompt_tokens: u32,
        /// Prompt tokens reused from the KV cache.
        cached_tokens: u32,
    },
    /// New text (complete UTF-8, stop strings removed).
    Text {
        /// The text.
        text: String,
        /// Tokens generated since the previous text (held-back text covers several), for
        /// charging a client as tokens are produced.
        tokens: u32,
    },
    /// The log-probabilities of the tokens whose text the next [`Event::Text`] completes
    /// (only with `logprobs`); their `token`s concatenate to the text sent.
    Logprobs(Vec<TokenLogprob>),
    /// Generation ended normally.
    Done {
        /// Why it ended.
        finish: FinishReason,
        /// Counts and timings.
        completion: Completion,
    },
    /// Generation failed.
    Error(EngineError),
}
