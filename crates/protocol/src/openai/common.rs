//! Types shared by the chat and completion endpoints.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// `stop`: one string or a list of strings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StopSpec {
    /// A single stop string.
    One(String),
    /// Several stop strings (OpenAI allows up to 4).
    Many(Vec<String>),
}

impl StopSpec {
    /// The stop strings as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StopSpec::One(s) => vec![s],
            StopSpec::Many(v) => v,
        }
    }
}

/// `stream_options` of a streaming request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct StreamOptions {
    /// Send a final chunk with `choices: []` and the usage of the whole request.
    #[serde(default)]
    pub include_usage: bool,
}

/// The sampling fields both generation endpoints accept.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct SamplingFields {
    /// Softmax temperature; 0 means greedy.
    pub temperature: Option<f32>,
    /// Nucleus sampling threshold.
    pub top_p: Option<f32>,
    /// Keep only the k most likely tokens (llama.cpp extension).
    pub top_k: Option<i32>,
    /// Minimum probability relative to the top token (llama.cpp extension).
    pub min_p: Option<f32>,
    /// Multiplicative repetition penalty (llama.cpp extension).
    pub repeat_penalty: Option<f32>,
    /// OpenAI presence penalty, -2..2.
    pub presence_penalty: Option<f32>,
    /// OpenAI frequency penalty, -2..2.
    pub frequency_penalty: Option<f32>,
    /// Tokens the penalties look back over: -1 the whole context, 0 none, 64 by default
    /// (llama-server's and Ollama's extension).
    pub repeat_last_n: Option<i64>,
    /// Seed for reproducible sampling.
    pub seed: Option<i64>,
    /// Token id (as a string key) to bias, -100..100.
    pub logit_bias: Option<HashMap<String, f32>>,
}

/// Token counts of one request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Usage {
    /// Tokens in the prompt, after the chat template.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Sum of the two.
    pub total_tokens: u32,
    /// Details on the prompt tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// Details on prompt tokens.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PromptTokensDetails {
    /// Prompt tokens served from the KV cache instead of being evaluated again.
    pub cached_tokens: u32,
}

/// Hearth's per-response timings: a non-standard field that OpenAI clients ignore.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Timings {
    /// Prompt tokens evaluated (not taken from the cache).
    pub prompt_n: u32,
    /// Milliseconds spent evaluating the prompt.
    pub prompt_ms: f64,
    /// Tokens generated.
    pub predicted_n: u32,
    /// Milliseconds from the first to the last generated token.
    pub predicted_ms: f64,
    /// Generated tokens per second.
    pub predicted_per_second: f64,
    /// Prompt tokens reused from the KV cache.
    pub cached_n: u32,
}
