//! The engine's error type.

pub use crate::cause::{DecodeError, GrammarError, LoadError, Role, Shortfall, TemplateError, WrongKind};
pub use crate::invalid::{Constrained, Invalid, SchemaFault, SchemaRule};
use thiserror::Error;

/// Everything that can go wrong between a validated request and its last token.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EngineError {
    /// The requested model is not in the registry (or not allowed).
    #[error("The model `{model}` does not exist or you do not have access to it.")]
    ModelNotFound {
        /// The name as the client sent it.
        model: String,
    },
    /// No model was named and no default model is configured.
    #[error("you must provide a model parameter (this server has no default model)")]
    NoDefaultModel,
    /// A request parameter is out of range or malformed.
    #[error("{reason}")]
    InvalidParam {
        /// The request field at fault.
        param: String,
        /// What is wrong with it.
        reason: Invalid,
    },
    /// Prompt plus requested completion do not fit the context window.
    #[error(
        "This model's maximum context length is {n_ctx} tokens. However, you requested {} tokens ({prompt_tokens} in the messages, {max_tokens} in the completion). Please reduce the length of the messages or completion.",
        prompt_tokens + max_tokens
    )]
    ContextLengthExceeded {
        /// Tokens in the prompt.
        prompt_tokens: u32,
        /// Tokens requested for the completion.
        max_tokens: u32,
        /// The model's context window per sequence.
        n_ctx: u32,
    },
    /// The prompt's text is so long that it cannot fit the window whatever its tokens (refused
    /// before tokenizing it).
    #[error(
        "This model's maximum context length is {n_ctx} tokens. However, your messages are at least {min_tokens} tokens. Please reduce the length of the messages."
    )]
    PromptTooLong {
        /// Fewest tokens the prompt's text can take.
        min_tokens: u64,
        /// The model's context window per sequence.
        n_ctx: u32,
    },
    /// An embedding or rerank input is longer than the model's window.
    #[error(
        "This model's maximum context length is {limit} tokens, however input {index} has {tokens} tokens. Please shorten the input, or set `truncate` to true."
    )]
    InputTooLong {
        /// Which input (0-based).
        index: usize,
        /// Its length in tokens.
        tokens: u32,
        /// The most tokens one input may have.
        limit: u32,
    },
    /// The chat template refused the conversation (its `raise_exception`).
    #[error("{0}")]
    TemplateRejected(TemplateError),
    /// The model's work queue is full.
    #[error("the server is overloaded: too many requests are waiting for model `{model}`")]
    Overloaded {
        /// The model whose queue is full.
        model: String,
    },
    /// No room to load the model: the loaded models that would have to make room are busy, or
    /// it alone exceeds the memory budget.
    #[error("model `{model}` cannot be loaded now: {reason}")]
    NoCapacity {
        /// The model to load.
        model: String,
        /// Why.
        reason: Shortfall,
    },
    /// The model has running or waiting requests.
    #[error("model `{model}` has running requests; retry when they are done")]
    Busy {
        /// The model.
        model: String,
    },
    /// The model's worker is gone (it failed and will be reloaded on next use).
    #[error("model `{model}` is not available right now; retry the request")]
    Unavailable {
        /// The model whose worker is gone.
        model: String,
    },
    /// The model file could not be loaded.
    #[error("model `{model}` could not be loaded: {reason}")]
    ModelLoad {
        /// The model id.
        model: String,
        /// Why (logged; not sent to clients).
        reason: LoadError,
    },
    /// The model's file could not be removed.
    #[error("model `{model}` could not be deleted: {kind}")]
    DeleteFailed {
        /// The model id.
        model: String,
        /// Why (logged; not sent to clients).
        kind: std::io::ErrorKind,
    },
    /// The model is of the wrong kind for the request (e.g. chat with an embedding model).
    #[error("{0}")]
    WrongModelKind(WrongKind),
    /// llama.cpp failed to evaluate a batch.
    #[error("decoding failed: {0}")]
    Decode(DecodeError),
    /// The request's grammar could not be built (a GBNF syntax error, say).
    #[error("the grammar is invalid: {0}")]
    InvalidGrammar(GrammarError),
    /// The worker thread panicked while serving this request.
    #[error("the model worker failed while generating")]
    WorkerFailed,
    /// The model's worker process died (a crash in llama.cpp, a signal, or out of memory);
    /// the next request loads it again. What happened is in the server log.
    #[error(
        "model `{model}` crashed while serving this request; retry it (the model is reloaded on the next request)"
    )]
    ModelCrashed {
        /// The model.
        model: String,
    },
    /// The model crashed again and again; it is not loaded again until the back-off ends or an
    /// admin loads it.
    #[error("model `{model}` crashed {crashes} times within a minute; it is not reloaded for {retry_after} s (an admin can load it now with POST /models/load)")]
    CrashLoop {
        /// The model.
        model: String,
        /// Crashes within the window.
        crashes: u32,
        /// Seconds until it may be loaded again.
        retry_after: u64,
    },
}

impl EngineError {
    /// Shorthand for [`EngineError::InvalidParam`].
    pub fn invalid(param: impl Into<String>, reason: Invalid) -> Self {
        EngineError::InvalidParam { param: param.into(), reason }
    }

    /// Shorthand for [`EngineError::WrongModelKind`].
    pub fn wrong_kind(is: Role, needed: Role) -> Self {
        EngineError::WrongModelKind(WrongKind { is, needed })
    }
}
