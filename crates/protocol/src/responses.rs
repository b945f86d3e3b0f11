//! OpenAI's Responses API (`/v1/responses`), stateless: nothing is stored.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `input`: a string (one user message) or a list of items.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Input {
    /// One user message.
    Text(String),
    /// Messages `{"role", "content"}`, `function_call` and `function_call_output` items.
    #[schema(value_type = Vec<Object>)]
    Items(Vec<Value>),
}

/// `text` of a request: the answer's format.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TextConfig {
    /// `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema", "name",
    /// "schema", "strict"}`.
    #[schema(value_type = Option<Object>)]
    pub format: Option<Value>,
}

/// `POST /v1/responses`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ResponsesRequest {
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// The input.
    pub input: Option<Input>,
    /// A system (developer) message put first.
    pub instructions: Option<String>,
    /// Most tokens to generate.
    pub max_output_tokens: Option<i64>,
    /// Softmax temperature.
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// The answer's format.
    pub text: Option<TextConfig>,
    /// Function tools: `{"type": "function", "name", "description", "parameters", "strict"}`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// `"auto"`, `"none"`, `"required"` or `{"type": "function", "name"}`.
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    /// Whether one answer may hold several calls (default false, as chat completions).
    pub parallel_tool_calls: Option<bool>,
    /// Stream typed server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Keep the response for later (refused: Hearth's Responses API is stateless).
    pub store: Option<bool>,
    /// Continue a stored response (refused: nothing is stored).
    pub previous_response_id: Option<String>,
    /// Metadata echoed back.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Reasoning options (refused unless empty: no reasoning models).
    #[schema(value_type = Option<Object>)]
    pub reasoning: Option<Value>,
}

/// Token counts.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[schema(as = ResponsesUsage)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Details of the prompt tokens.
    pub input_tokens_details: InputDetails,
    /// Generated tokens.
    pub output_tokens: u32,
    /// Details of the generated tokens.
    pub output_tokens_details: OutputDetails,
    /// Sum.
    pub total_tokens: u32,
}

/// Prompt token details.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct InputDetails {
    /// Read from the KV cache.
    pub cached_tokens: u32,
    /// Always 0.
    pub cache_write_tokens: u32,
}

/// Generated token details.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct OutputDetails {
    /// Always 0.
    pub reasoning_tokens: u32,
}

/// A response object.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct Response {
    /// `resp_...`.
    pub id: String,
    /// Always `response`.
    pub object: String,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// `in_progress`, `completed` or `incomplete`.
    pub status: String,
    /// Always null (errors are HTTP errors, or `response.failed` in a stream).
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    /// `{"reason": "max_output_tokens"}` when incomplete.
    #[schema(value_type = Option<Object>)]
    pub incomplete_details: Option<Value>,
    /// The request's instructions.
    pub instructions: Option<String>,
    /// The request's limit.
    pub max_output_tokens: Option<i64>,
    /// The model that answered.
    pub model: String,
    /// `message` items with `output_text` parts, and `function_call` items.
    #[schema(value_type = Vec<Object>)]
    pub output: Vec<Value>,
    /// As requested.
    pub parallel_tool_calls: bool,
    /// As requested.
    pub temperature: Option<f32>,
    /// As requested.
    pub top_p: Option<f32>,
    /// As requested.
    #[schema(value_type = Object)]
    pub tool_choice: Value,
    /// As requested.
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<Value>,
    /// The answer's format.
    #[schema(value_type = Object)]
    pub text: Value,
    /// Always false.
    pub store: bool,
    /// As requested.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Token counts (null until completed).
    pub usage: Option<Usage>,
}
