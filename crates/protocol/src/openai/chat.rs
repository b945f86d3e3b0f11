//! `/v1/chat/completions` request, response and stream chunk.

use super::common::{SamplingFields, StopSpec, StreamOptions, Timings, Usage};
use serde::{Deserialize, Serialize};

/// A chat completion request. Unknown fields are ignored, as OpenAI clients send many.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ChatCompletionRequest {
    /// The model id or alias; the server's default model when empty.
    #[serde(default)]
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Stream the answer as server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Options of a streamed answer.
    pub stream_options: Option<StreamOptions>,
    /// Upper bound on generated tokens (deprecated name).
    pub max_tokens: Option<i64>,
    /// Upper bound on generated tokens.
    pub max_completion_tokens: Option<i64>,
    /// Stop sequences.
    pub stop: Option<StopSpec>,
    /// Number of choices (1-8), sampled from one evaluation of the prompt with seeds
    /// `seed`, `seed + 1`, ...; usage counts the prompt once and every choice's tokens.
    pub n: Option<i64>,
    /// Report each answer token's log-probability (`choices[].logprobs.content`).
    pub logprobs: Option<bool>,
    /// Also list this many most likely tokens at each position (0-20; needs `logprobs`).
    pub top_logprobs: Option<i64>,
    /// Functions the model may call: `{"type": "function", "function": {"name", "description",
    /// "parameters", "strict"}}`. Calls come back in `message.tool_calls`; their arguments
    /// follow the parameters' schema (decoding is constrained once a call begins).
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<serde_json::Value>>,
    /// `"auto"` (default with tools), `"none"`, `"required"`, or `{"type": "function",
    /// "function": {"name": ...}}`.
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<serde_json::Value>,
    /// Whether one answer may hold several calls. Default false, as in llama-server (small
    /// models repeat a call until `max_tokens`); OpenAI defaults to true.
    pub parallel_tool_calls: Option<bool>,
    /// `{"type": "text"}`, `{"type": "json_object"}` (any JSON object) or `{"type":
    /// "json_schema", "json_schema": {"name", "schema", "strict"}}`: decoding is constrained,
    /// so the answer is valid by construction.
    pub response_format: Option<serde_json::Value>,
    /// A GBNF grammar the answer must follow (llama-server's extension; its start rule is
    /// `root`). Not together with `response_format`.
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
    /// Retrieval (Hearth extension): answer from a document collection, with citations.
    pub rag: Option<RagOptions>,
    /// Sampling parameters.
    #[serde(flatten)]
    pub sampling: SamplingFields,
}

/// The `rag` extension of a chat request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RagOptions {
    /// The collection to retrieve from.
    pub collection: String,
    /// Chunks to retrieve (default 4), fewer if they do not fit the context.
    pub top_k: Option<i64>,
}

/// One message of the conversation.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Text, or a list of content parts; may be null for an assistant message.
    #[serde(default)]
    pub content: Option<MessageContent>,
    /// Optional participant name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An assistant message's tool calls (`{"id", "type": "function", "function": {"name",
    /// "arguments"}}`), as an earlier answer returned them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tool_calls: Option<Vec<serde_json::Value>>,
    /// A `tool` message's call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// Message content: a string or a list of parts.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content parts (only `text` parts are supported).
    Parts(Vec<ContentPart>),
}

/// One content part.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ContentPart {
    /// `text`, `image_url`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    pub text: Option<String>,
}

/// A non-streamed chat completion.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ChatCompletionResponse {
    /// `chatcmpl-...`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// The model id that answered.
    pub model: String,
    /// Opaque build fingerprint.
    pub system_fingerprint: String,
    /// The single choice.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    pub usage: Usage,
    /// Hearth's timings (non-standard).
    pub timings: Timings,
    /// The sources given to the model, numbered as the answer's `[n]` markers (with `rag`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citations: Option<Vec<serde_json::Value>>,
}

/// One choice of a non-streamed answer.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ChatChoice {
    /// Always 0.
    pub index: u32,
    /// The answer.
    pub message: AssistantMessage,
    /// With `logprobs`: `{"content": [{"token", "logprob", "bytes", "top_logprobs"}], "refusal": null}`.
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<serde_json::Value>,
    /// `stop`, `length` or `tool_calls`.
    pub finish_reason: String,
}

/// The assistant's message.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: String,
    /// The generated text; null when the answer is only tool calls.
    pub content: Option<String>,
    /// Always null.
    pub refusal: Option<String>,
    /// The tools the model called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
}

/// A call the model made.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ToolCall {
    /// `call_...`; a `tool` message answers it by this id.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function and its arguments.
    pub function: FunctionCall,
}

/// A called function.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct FunctionCall {
    /// The tool's name.
    pub name: String,
    /// The arguments, JSON text.
    pub arguments: String,
}

/// A piece of a streamed tool call: `id`, `type` and `name` once, then argument fragments.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ToolCallDelta {
    /// Which call of the answer (0, 1, ...).
    pub index: u32,
    /// The call's id, on its first piece.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function`, on its first piece.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The name (first piece) or more of the arguments.
    pub function: FunctionDelta,
}

/// The function part of a [`ToolCallDelta`].
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct FunctionDelta {
    /// The tool's name, on the call's first piece.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// More of the arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// One server-sent event of a streamed chat completion.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ChatCompletionChunk {
    /// Same id on every chunk of one answer.
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    /// Seconds since the epoch; the same on every chunk.
    pub created: u64,
    /// The model id.
    pub model: String,
    /// Opaque build fingerprint.
    pub system_fingerprint: String,
    /// One choice, or none on the final usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// Null except on the final usage chunk when `include_usage` was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
    /// Hearth's timings, on the final chunk (non-standard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
    /// The sources given to the model (with `rag`), on the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citations: Option<Vec<serde_json::Value>>,
}

/// One choice of a stream chunk.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ChunkChoice {
    /// Always 0.
    pub index: u32,
    /// What this chunk adds.
    pub delta: Delta,
    /// With `logprobs`: the log-probabilities of this chunk's tokens.
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<serde_json::Value>,
    /// Null until the last content chunk.
    pub finish_reason: Option<String>,
}

/// The increment of a stream chunk.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Delta {
    /// `assistant` in the first chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// New text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Pieces of tool calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}
