//! Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `system`: a string or a list of text blocks.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum System {
    /// Plain text.
    Text(String),
    /// Text blocks `{"type": "text", "text"}`.
    #[schema(value_type = Vec<Object>)]
    Blocks(Vec<Value>),
}

/// A message's content: a string or a list of content blocks.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Blocks: `text`, `tool_use`, `tool_result` (`image` and `document` are refused).
    #[schema(value_type = Vec<Object>)]
    Blocks(Vec<Value>),
}

/// One input message.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[schema(as = AnthropicMessage)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// Its content.
    pub content: Content,
}

/// `POST /v1/messages`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct MessagesRequest {
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// Most tokens to generate (required).
    pub max_tokens: Option<i64>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// The system prompt.
    pub system: Option<System>,
    /// Strings that end the answer (`stop_reason: stop_sequence`).
    pub stop_sequences: Option<Vec<String>>,
    /// Stream server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// 0 to 1.
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Top-k.
    pub top_k: Option<i32>,
    /// Tools: `{"name", "description", "input_schema"}`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// `{"type": "auto" | "any" | "tool" | "none", "name"?, "disable_parallel_tool_use"?}`.
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    /// Extended thinking (refused: no thinking models).
    #[schema(value_type = Option<Object>)]
    pub thinking: Option<Value>,
    /// Request metadata (ignored).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// `POST /v1/messages/count_tokens`: as a message request, without `max_tokens`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CountTokensRequest {
    /// Model name.
    #[serde(default)]
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// The system prompt.
    pub system: Option<System>,
    /// Tools (their description counts).
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Vec<Value>>,
    /// Tool choice.
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
}

/// `count_tokens` answer.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct CountTokens {
    /// Tokens of the prompt the model would see.
    pub input_tokens: u32,
}

/// One block of an answer.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call.
    ToolUse {
        /// `toolu_...`; a `tool_result` block answers it by this id.
        id: String,
        /// The tool.
        name: String,
        /// Its arguments.
        #[schema(value_type = Object)]
        input: Value,
    },
}

/// Token counts.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[schema(as = AnthropicUsage)]
pub struct Usage {
    /// Prompt tokens evaluated (not read from the cache).
    pub input_tokens: u32,
    /// Generated tokens.
    pub output_tokens: u32,
    /// Always 0.
    pub cache_creation_input_tokens: u32,
    /// Prompt tokens read from the KV cache.
    pub cache_read_input_tokens: u32,
}

/// A message answer.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct MessagesResponse {
    /// `msg_...`.
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `assistant`.
    pub role: String,
    /// The model that answered.
    pub model: String,
    /// Text and tool-use blocks.
    pub content: Vec<ContentBlock>,
    /// `end_turn`, `max_tokens`, `stop_sequence` or `tool_use`.
    pub stop_reason: Option<String>,
    /// The stop sequence that ended the answer.
    pub stop_sequence: Option<String>,
    /// Token counts.
    pub usage: Usage,
}

/// An error body.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[schema(as = AnthropicErrorBody)]
pub struct ErrorBody {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error.
    pub error: ErrorDetail,
}

/// Anthropic's error detail.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[schema(as = AnthropicErrorDetail)]
pub struct ErrorDetail {
    /// `invalid_request_error`, `authentication_error`, `not_found_error`, `rate_limit_error`,
    /// `api_error`, `overloaded_error`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// What went wrong.
    pub message: String,
}
