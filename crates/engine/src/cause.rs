//! Typed causes inside [`crate::EngineError`] and the [`crate::Backend`] trait's results: what
//! failed, as values a caller can match on; the library's own words go to the log where the
//! failure happens.

use crate::model::Token;
use thiserror::Error;

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// Generates text (chat and completions).
    Generator,
    /// Produces embeddings.
    Embedder,
    /// Scores query-document pairs (a cross-encoder with rank pooling).
    Reranker,
}

impl Role {
    fn noun(self) -> &'static str {
        match self {
            Role::Generator => "a text generation model",
            Role::Embedder => "an embedding model",
            Role::Reranker => "a reranker (cross-encoder with rank pooling)",
        }
    }

    fn route(self) -> &'static str {
        match self {
            Role::Generator => "/v1/chat/completions",
            Role::Embedder => "/v1/embeddings",
            Role::Reranker => "/v1/rerank",
        }
    }
}

/// A request for one kind of model sent to another.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[error("this model is {}, and this request needs {}; use it with {}", .is.noun(), .needed.noun(), .is.route())]
pub struct WrongKind {
    /// What the model is.
    pub is: Role,
    /// What the request needs.
    pub needed: Role,
}

/// Why a model does not fit beside the loaded ones.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// It alone needs more than the whole memory budget.
    #[error("the model needs about {need_mib} MiB, more than the whole memory budget")]
    OverBudget {
        /// Its estimated memory.
        need_mib: u64,
    },
    /// Every loaded model that would have to make room is busy.
    #[error("every loaded model that would have to make room is busy")]
    AllBusy,
}

/// Why a model (or its vocabulary) could not be loaded.
#[derive(Debug, Error, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LoadError {
    /// llama.cpp could not be initialised in this process.
    #[error("llama.cpp could not be initialised")]
    Init,
    /// The file is not there (any more).
    #[error("the model file is missing")]
    Missing,
    /// llama.cpp could not read the file.
    #[error("llama.cpp could not read the file; is it a complete GGUF model?")]
    Unreadable,
    /// llama.cpp could not make a context with these settings (memory, say).
    #[error("llama.cpp could not create a context with these settings")]
    Context,
    /// More parallel sequences than llama.cpp allows.
    #[error("parallel sequences must be 1..={max}, got {got}")]
    Sequences {
        /// Asked for.
        got: usize,
        /// llama.cpp's limit.
        max: usize,
    },
    /// A KV cache smaller than one sequence's context.
    #[error("KV size {n_kv} is smaller than the context size {n_ctx}")]
    KvBelowContext {
        /// Cells in the cache.
        n_kv: u32,
        /// The context of one sequence.
        n_ctx: u32,
    },
    /// A batch size outside 1..=65536.
    #[error("batch size {0} is outside 1..=65536")]
    BatchSize(usize),
    /// An embedding batch that does not split evenly into its inputs (llama.cpp would abort).
    #[error("embedding batch tokens {n_batch} must be a multiple of inputs per batch {inputs}")]
    EmbedBatch {
        /// Tokens per batch.
        n_batch: usize,
        /// Inputs per batch.
        inputs: usize,
    },
    /// A thread could not be started.
    #[error("a thread could not be started ({0:?})")]
    Thread(#[serde(with = "io_kind")] std::io::ErrorKind),
    /// The worker process could not be started (the program is missing or not executable).
    #[error("the model's worker process could not be started ({0:?})")]
    Spawn(#[serde(with = "io_kind")] std::io::ErrorKind),
    /// Layers were asked for on a GPU (`--gpu-layers N` or `all`) and this build or machine
    /// has no GPU device.
    #[error("GPU layers were asked for, but there is no GPU device (this build's backends: {0}); use --gpu-layers auto or 0")]
    NoGpu(String),
    /// The model could not be loaded with the layers asked for on the GPU (out of device
    /// memory, or the device failed); llama.cpp's reason is in the log.
    #[error("the model could not be loaded with {0} layers on the GPU (out of device memory?); lower --gpu-layers or use auto")]
    GpuLoad(String),
    /// The worker process speaks another version of the protocol (the binary was replaced
    /// while the server ran).
    #[error("the model's worker process speaks protocol {theirs}, the server {ours}; restart the server")]
    Protocol {
        /// The server's version.
        ours: u32,
        /// The worker's.
        theirs: u32,
    },
    /// The worker ended before it said whether the model loaded.
    #[error("the worker died while loading")]
    WorkerDied,
}

/// Why a batch could not be evaluated.
#[derive(Debug, Error, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DecodeError {
    /// No tokens, or more than the batch holds.
    #[error("a batch of {tokens} tokens does not fit (limit {limit})")]
    BatchSize {
        /// Tokens given.
        tokens: usize,
        /// The most one batch takes.
        limit: usize,
    },
    /// An item names a sequence or token the model does not have.
    #[error("batch item out of range (sequence {seq}, token {token})")]
    OutOfRange {
        /// Its sequence.
        seq: usize,
        /// Its token.
        token: Token,
    },
    /// The KV cache has no room for the batch.
    #[error("no room in the KV cache for the batch")]
    NoKvSpace,
    /// llama.cpp failed with this status.
    #[error("llama.cpp failed with status {0}")]
    Library(i32),
    /// A sequence came back without its pooled embedding (or with the wrong count).
    #[error("no pooled embedding for input {0}")]
    NoEmbedding(usize),
}

/// Why a request's output constraint could not become a grammar.
#[derive(Debug, Error, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GrammarError {
    /// llama.cpp could not parse the GBNF.
    #[error("llama.cpp could not parse it")]
    Syntax,
    /// A schema `pattern` that is not a valid regular expression.
    #[error("pattern {0:?} is invalid")]
    InvalidPattern(String),
    /// A schema `pattern` that constrained decoding cannot express.
    #[error(
        "JSON Schema keyword `pattern` {0:?} is not supported by constrained decoding (it must be anchored with ^ and $, without lookarounds, backreferences or \\b)"
    )]
    UnsupportedPattern(String),
    /// llama.cpp's converter refused the schema.
    #[error("the JSON Schema cannot be turned into a grammar")]
    Schema,
    /// This backend only takes GBNF.
    #[error("this backend cannot turn a JSON Schema into a grammar")]
    SchemaUnsupported,
    /// A lazy tool grammar refused the text of its own trigger.
    #[error("the tool grammar refused the call's opening")]
    Opening,
}

/// Why the chat template produced no prompt.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// The template raised an exception; its message is meant for the client (roles that do
    /// not alternate, say).
    #[error("{0}")]
    Raised(String),
    /// The template failed while rendering these messages.
    #[error("the model's chat template could not render these messages ({0})")]
    Render(minijinja::ErrorKind),
    /// The template ran past its budget of steps ([`crate::limits::TEMPLATE_FUEL`]).
    #[error(
        "the model's chat template ran past its limit of {} steps rendering these messages",
        crate::limits::TEMPLATE_FUEL
    )]
    OutOfFuel,
}

/// Serde for `std::io::ErrorKind`, which has no serde form: the kind is not sent (it is logged
/// where it happens) and arrives as `Other`.
mod io_kind {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(_: &std::io::ErrorKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<std::io::ErrorKind, D::Error> {
        <()>::deserialize(d)?;
        Ok(std::io::ErrorKind::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_kind_names_both_roles_and_the_route_to_use() {
        let e = WrongKind { is: Role::Reranker, needed: Role::Embedder };
        let m = e.to_string();
        assert!(m.contains("a reranker") && m.contains("an embedding model") && m.contains("/v1/rerank"), "{m}");
    }
}
