//! `/v1/completions` (legacy text completion) types.

use super::common::{SamplingFields, StopSpec, StreamOptions, Timings, Usage};
use serde::{Deserialize, Serialize};

/// A text completion request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CompletionRequest {
    /// The model id or alias; the server's default model when empty.
    #[serde(default)]
    pub model: String,
    /// The prompt: a string, a list with one string, a list of token ids, or a list with one
    /// list of token ids.
    pub prompt: Option<Prompt>,
    /// Stream the answer as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Options of a streamed answer.
    pub stream_options: Option<StreamOptions>,
    /// Upper bound on generated tokens; OpenAI's default is 16.
    pub max_tokens: Option<i64>,
    /// Stop sequences.
    pub stop: Option<StopSpec>,
    /// Number of choices; only 1 is supported.
    pub n: Option<i64>,
    /// Echo the prompt before the completion.
    #[serde(default)]
    pub echo: bool,
    /// Text appended after the completion.
    pub suffix: Option<String>,
    /// Report each token's log-probability and this many alternatives (0-20):
    /// `choices[].logprobs` has `tokens`, `token_logprobs`, `top_logprobs` and `text_offset`.
    #[schema(value_type = Option<i64>)]
    pub logprobs: Option<serde_json::Value>,
    /// As in chat: `json_object` or `json_schema` constrains the text (a Hearth extension on
    /// this legacy endpoint, as in vLLM and llama-server).
    pub response_format: Option<serde_json::Value>,
    /// A GBNF grammar the text must follow (llama-server's extension).
    pub grammar: Option<String>,
    /// Keep generating past end-of-generation tokens (llama.cpp extension, for benchmarks).
    #[serde(default)]
    pub ignore_eos: bool,
    /// How long the model stays loaded after this request (Ollama's `keep_alive`: seconds,
    /// a duration such as `"5m"`, 0 to unload when idle, negative to keep it).
    pub keep_alive: Option<serde_json::Value>,
    /// Layers on the GPU, from Ollama's `options.num_gpu` (`-1`: auto); not on OpenAI's wire.
    #[serde(skip)]
    pub num_gpu: Option<i64>,
    /// Sampling parameters.
    #[serde(flatten)]
    pub sampling: SamplingFields,
}

/// The forms a completion prompt can take.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Prompt {
    /// One string.
    Text(String),
    /// A list of strings (only one is supported).
    Texts(Vec<String>),
    /// Token ids.
    Tokens(Vec<i64>),
    /// Lists of token ids (only one is supported).
    TokenLists(Vec<Vec<i64>>),
}

/// A non-streamed completion, also the shape of each stream chunk.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CompletionResponse {
    /// `cmpl-...`.
    pub id: String,
    /// Always `text_completion`.
    pub object: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// The model id.
    pub model: String,
    /// Opaque build fingerprint.
    pub system_fingerprint: String,
    /// One choice, or none on the final usage chunk of a stream.
    pub choices: Vec<CompletionChoice>,
    /// Token counts (null on stream chunks other than the usage chunk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
    /// Hearth's timings (non-standard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
}

/// One completion choice.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CompletionChoice {
    /// Always 0.
    pub index: u32,
    /// The generated text.
    pub text: String,
    /// With `logprobs`: this choice's (or chunk's) token log-probabilities.
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<serde_json::Value>,
    /// `stop` or `length`; null on intermediate stream chunks.
    pub finish_reason: Option<String>,
}
