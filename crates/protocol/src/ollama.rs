//! Ollama's API (`/api/*`), as its `docs/api.md` and its clients define it. Durations are
//! integer nanoseconds; streams are NDJSON, one object per line.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `options` of a generate or chat request: the keys Hearth maps. Other keys clients send
/// (`mirostat`, `tfs_z`, `num_thread`, ...) are accepted and ignored.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Options {
    /// Most tokens to generate (`-1`: until the end or the context; `-2`: fill the context).
    pub num_predict: Option<i64>,
    /// Context window Ollama would load the model with; Hearth's context is set at load
    /// (`--ctx-size`), so a value is accepted and the request is checked against the real one.
    pub num_ctx: Option<i64>,
    /// Softmax temperature.
    pub temperature: Option<f32>,
    /// Top-k.
    pub top_k: Option<i32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Minimum probability relative to the top token.
    pub min_p: Option<f32>,
    /// Repetition penalty.
    pub repeat_penalty: Option<f32>,
    /// How many recent tokens the penalties look at (-1: the whole context, 0: none; 64).
    pub repeat_last_n: Option<i64>,
    /// Presence penalty.
    pub presence_penalty: Option<f32>,
    /// Frequency penalty.
    pub frequency_penalty: Option<f32>,
    /// Sampling seed.
    pub seed: Option<i64>,
    /// Stop strings.
    pub stop: Option<Vec<String>>,
    /// Layers on the GPU (`-1`: as many as fit; `0`: the CPU). A model loaded with another
    /// placement is loaded again when it is idle.
    pub num_gpu: Option<i64>,
}

/// `POST /api/generate`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaGenerateRequest)]
pub struct GenerateRequest {
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// The prompt; empty (or null) just loads the model.
    pub prompt: Option<String>,
    /// Text after the insertion point (fill-in-the-middle), for models that have FIM tokens.
    pub suffix: Option<String>,
    /// A system message for the template.
    pub system: Option<String>,
    /// A template to use instead of the model's (not supported: the model's is used).
    pub template: Option<String>,
    /// Send the prompt as it is, without the template.
    pub raw: Option<bool>,
    /// Base64 images (refused: no vision models).
    pub images: Option<Vec<String>>,
    /// `"json"` or a JSON Schema.
    #[schema(value_type = Option<Object>)]
    pub format: Option<Value>,
    /// Sampling options.
    pub options: Option<Options>,
    /// Stream NDJSON (default true).
    pub stream: Option<bool>,
    /// How long the model stays loaded afterwards (`"5m"`, seconds, 0 unloads).
    #[schema(value_type = Option<Object>)]
    pub keep_alive: Option<Value>,
    /// Think before answering (refused: no thinking models).
    #[schema(value_type = Option<Object>)]
    pub think: Option<Value>,
    /// The deprecated context of an earlier answer (ignored).
    #[schema(value_type = Option<Vec<i64>>)]
    pub context: Option<Value>,
}

/// One message of `/api/chat`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaMessage)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Its text (null on an assistant turn that only calls tools).
    #[serde(default)]
    pub content: Option<String>,
    /// Base64 images (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// An assistant's tool calls: `{"function": {"name", "arguments": {...}}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tool_calls: Option<Vec<Value>>,
    /// A tool message's tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// Thinking text (answers never carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
}

/// `POST /api/chat`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ChatRequest {
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// The conversation; empty (or null) just loads the model.
    pub messages: Option<Vec<Message>>,
    /// Tools: `{"type": "function", "function": {"name", "description", "parameters"}}`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// `"json"` or a JSON Schema.
    #[schema(value_type = Option<Object>)]
    pub format: Option<Value>,
    /// Sampling options.
    pub options: Option<Options>,
    /// Stream NDJSON (default true).
    pub stream: Option<bool>,
    /// How long the model stays loaded afterwards.
    #[schema(value_type = Option<Object>)]
    pub keep_alive: Option<Value>,
    /// Think before answering (refused: no thinking models).
    #[schema(value_type = Option<Object>)]
    pub think: Option<Value>,
}

/// A generate answer, or one line of its stream.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct GenerateResponse {
    /// Model name.
    pub model: String,
    /// RFC 3339 time.
    pub created_at: String,
    /// The text (this piece of it when streaming).
    pub response: String,
    /// Whether this is the last line.
    pub done: bool,
    /// `stop`, `length`, `load` or `unload` on the last line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    /// Counts and durations, on the last line.
    #[serde(flatten)]
    #[schema(value_type = Stats)]
    pub stats: Option<Stats>,
}

/// A chat answer, or one line of its stream.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ChatResponse {
    /// Model name.
    pub model: String,
    /// RFC 3339 time.
    pub created_at: String,
    /// The assistant's message (this piece of it when streaming).
    pub message: Message,
    /// Whether this is the last line.
    pub done: bool,
    /// `stop`, `length`, `load` or `unload` on the last line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    /// Counts and durations, on the last line.
    #[serde(flatten)]
    #[schema(value_type = Stats)]
    pub stats: Option<Stats>,
}

/// Counts and durations (nanoseconds) of a finished answer (only the last line has them, so
/// none is required).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Stats {
    /// From arrival to the end.
    pub total_duration: u64,
    /// Loading the model (0 when it was loaded).
    pub load_duration: u64,
    /// Prompt tokens.
    pub prompt_eval_count: u32,
    /// Evaluating the prompt.
    pub prompt_eval_duration: u64,
    /// Generated tokens.
    pub eval_count: u32,
    /// Generating.
    pub eval_duration: u64,
}

/// `details` of a model.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Details {
    /// Parent model (empty).
    pub parent_model: String,
    /// Always `gguf`.
    pub format: String,
    /// Architecture.
    pub family: String,
    /// Architectures.
    pub families: Vec<String>,
    /// Parameter count, e.g. `135M`.
    pub parameter_size: String,
    /// Quantisation, e.g. `Q4_1`.
    pub quantization_level: String,
}

/// One model of `/api/tags`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TagModel {
    /// Name: the file stem with the tag `:latest`.
    pub name: String,
    /// The same.
    pub model: String,
    /// File modification time, RFC 3339.
    pub modified_at: String,
    /// File size in bytes.
    pub size: u64,
    /// A digest of the file's identity (path, size, time), not of its bytes.
    pub digest: String,
    /// Details.
    pub details: Details,
}

/// `GET /api/tags`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Tags {
    /// The models.
    pub models: Vec<TagModel>,
}

/// One loaded model of `/api/ps`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PsModel {
    /// Name.
    pub name: String,
    /// The same.
    pub model: String,
    /// Memory it takes (file and KV cache).
    pub size: u64,
    /// As `/api/tags`.
    pub digest: String,
    /// Details.
    pub details: Details,
    /// When it unloads if unused (RFC 3339; far in the future when it stays).
    pub expires_at: String,
    /// Memory on a GPU (0: CPU).
    pub size_vram: u64,
    /// The context window it is loaded with, per sequence.
    pub context_length: u32,
}

/// `GET /api/ps`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Ps {
    /// Loaded models.
    pub models: Vec<PsModel>,
}

/// `POST /api/show`, `DELETE /api/delete`: a model by `model` (or the legacy `name`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ModelRef {
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// Legacy spelling of `model`.
    #[serde(default)]
    pub name: String,
    /// Ask for the full token list (ignored; not included).
    #[serde(default)]
    pub verbose: bool,
}

impl ModelRef {
    /// The model named, by `model` or else the legacy `name`.
    pub fn named(&self) -> &str {
        if self.model.is_empty() {
            &self.name
        } else {
            &self.model
        }
    }
}

/// `POST /api/pull`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaPullRequest)]
pub struct PullRequest {
    /// What to pull: `hf.co/OWNER/REPO[:QUANT]`, `OWNER/REPO[:QUANT]` or `OWNER/REPO/FILE.gguf`.
    #[serde(default)]
    pub model: String,
    /// Legacy spelling of `model`.
    #[serde(default)]
    pub name: String,
    /// Allow insecure connections (ignored: the hub's address is the server's setting).
    #[serde(default)]
    pub insecure: bool,
    /// Progress as NDJSON lines (default), or one object at the end.
    #[serde(default)]
    pub stream: Option<bool>,
}

/// One line of `POST /api/pull`'s progress.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaPullProgress)]
pub struct PullProgress {
    /// `pulling manifest`, `pulling DIGEST`, `verifying sha256 digest`, `writing manifest`,
    /// `success`.
    pub status: String,
    /// The file's digest (`sha256:HEX`) while it downloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The file's size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Bytes so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
}

/// `POST /api/show`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Show {
    /// Licence text (empty: the GGUF says none).
    pub license: String,
    /// A Modelfile describing the model.
    pub modelfile: String,
    /// Default parameters as Modelfile lines (`stop "<|im_end|>"`).
    pub parameters: String,
    /// The chat template (Jinja, as in the file).
    pub template: String,
    /// Details.
    pub details: Details,
    /// GGUF metadata: `general.architecture`, `<arch>.context_length`, ...
    #[schema(value_type = Object)]
    pub model_info: Value,
    /// `completion`, `tools`, `insert`, `embedding`.
    pub capabilities: Vec<String>,
    /// File modification time, RFC 3339.
    pub modified_at: String,
}

/// `POST /api/embed`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EmbedRequest {
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// A string or a list of strings.
    #[schema(value_type = Object)]
    pub input: Value,
    /// Cut inputs longer than the model's window (default true).
    pub truncate: Option<bool>,
    /// Vector size to cut to (Matryoshka models).
    pub dimensions: Option<i64>,
    /// How long the model stays loaded.
    #[schema(value_type = Option<Object>)]
    pub keep_alive: Option<Value>,
    /// Options (ignored).
    #[schema(value_type = Option<Object>)]
    pub options: Option<Value>,
}

/// `POST /api/embed` answer.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EmbedResponse {
    /// Model name.
    pub model: String,
    /// One unit-length vector per input.
    pub embeddings: Vec<Vec<f32>>,
    /// Nanoseconds.
    pub total_duration: u64,
    /// Nanoseconds loading the model.
    pub load_duration: u64,
    /// Input tokens.
    pub prompt_eval_count: u32,
}

/// `POST /api/embeddings` (legacy).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EmbeddingsRequest {
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// One text.
    #[serde(default)]
    pub prompt: String,
    /// How long the model stays loaded.
    #[schema(value_type = Option<Object>)]
    pub keep_alive: Option<Value>,
    /// Options (ignored).
    #[schema(value_type = Option<Object>)]
    pub options: Option<Value>,
}

/// `POST /api/embeddings` answer.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EmbeddingsResponse {
    /// The vector.
    pub embedding: Vec<f32>,
}

/// `GET /api/version`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Version {
    /// The Ollama API version Hearth follows (clients compare it against Ollama's).
    pub version: String,
    /// Hearth's own version.
    pub hearth: String,
}

/// An error, before or within a stream.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[schema(as = OllamaError)]
pub struct Error {
    /// What went wrong.
    pub error: String,
}
