//! Tool calling, protocol-neutral: the tools a request offers, how the model's chat template
//! family writes a call, the grammar that makes calls valid, and the parser that reads calls
//! back out of the text (streamed or whole). The OpenAI, Ollama and Anthropic handlers all
//! build a [`ToolRequest`] and read [`ToolEvent`]s.
//!
//! Families (detected from the chat template's source):
//! - [`ToolFamily::Hermes`] (Qwen 2.5/3, Hermes, many fine-tunes): `<tool_call>{json}</tool_call>`;
//! - [`ToolFamily::Llama3`]: a bare `{"name": ..., "parameters": ...}` object;
//! - [`ToolFamily::Mistral`]: `[TOOL_CALLS][{"name": ..., "arguments": ...}, ...]`;
//! - [`ToolFamily::Generic`]: a template that knows no tools; Hearth describes the tools in a
//!   system message and asks for the Hermes format, which the grammar then enforces.

mod gbnf;
mod parse;
mod prompt;

pub use gbnf::{prefix_rules, tool_grammar};
pub use parse::{parse_output, Parsed, ToolEvent, ToolParser};
pub use prompt::{generic_messages, template_tools};

use serde_json::Value;

/// Longest tool name (OpenAI's limit).
pub const MAX_NAME: usize = 64;

/// One function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// `^[a-zA-Z0-9_-]{1,64}$`.
    pub name: String,
    /// What it does (may be empty).
    pub description: String,
    /// A JSON Schema of its arguments (an object schema).
    pub parameters: Value,
}

/// Whether a name is a valid tool name.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= MAX_NAME && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// What the model must do with the tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// Answer in text or call tools, as the model decides (the grammar engages at the call).
    Auto,
    /// Call at least one tool.
    Required,
    /// Call this tool.
    Named(String),
}

/// The tools of one request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRequest {
    /// The tools, names unique.
    pub tools: Vec<Tool>,
    /// What to do with them.
    pub choice: ToolChoice,
    /// Whether several calls may come in one answer.
    pub parallel: bool,
}

/// A call read out of the model's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// A fresh id (`call_...`, or 9 characters for Mistral templates, which insist).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as the model wrote them (JSON text).
    pub arguments: String,
}

/// How a chat template family writes tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFamily {
    /// `<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>`, one block per call.
    Hermes,
    /// `{"name": ..., "parameters": ...}` as the whole answer.
    Llama3,
    /// `[TOOL_CALLS][{"name": ..., "arguments": ...}]`.
    Mistral,
    /// No template support: Hearth's system prompt asks for the Hermes format.
    Generic,
}

impl ToolFamily {
    /// The family of a GGUF chat template (from its source text).
    pub fn detect(template: &str) -> Self {
        if !template.contains("tools") && !template.contains("tool_calls") {
            return Self::Generic;
        }
        if template.contains("[TOOL_CALLS]") {
            Self::Mistral
        } else if template.contains("<tool_call>") {
            Self::Hermes
        } else if template.contains("<|python_tag|>") || template.contains("\"parameters\": ") {
            Self::Llama3
        } else {
            Self::Generic
        }
    }

    /// Whether the model's own template renders `tools` and tool messages.
    pub fn in_template(self) -> bool {
        self != Self::Generic
    }

    /// The key that holds a call's arguments.
    fn args_key(self) -> &'static str {
        match self {
            Self::Llama3 => "parameters",
            _ => "arguments",
        }
    }

    /// A fresh call id in the form the family's templates accept.
    pub fn new_id(self) -> String {
        let r = random_alnum(if self == Self::Mistral { 9 } else { 24 });
        if self == Self::Mistral {
            r
        } else {
            format!("call_{r}")
        }
    }
}

fn random_alnum(n: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = String::with_capacity(n);
    while out.len() < n {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let mut x = h.finish();
        for _ in 0..10 {
            if out.len() == n {
                break;
            }
            out.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
            x /= ALPHABET.len() as u64;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_detected_from_template_text() {
        let qwen = "{%- if tools %}<tools>{% for tool in tools %}{{ tool | tojson }}{% endfor %}</tools> <tool_call>";
        assert_eq!(ToolFamily::detect(qwen), ToolFamily::Hermes);
        let mistral =
            "{%- if tools is defined %}[AVAILABLE_TOOLS]{{ tools|tojson }}[/AVAILABLE_TOOLS]{% endif %}[TOOL_CALLS]";
        assert_eq!(ToolFamily::detect(mistral), ToolFamily::Mistral);
        let llama = "{%- if tools is not none %}Respond in the format {\"name\": function name, \"parameters\": dictionary}<|python_tag|>";
        assert_eq!(ToolFamily::detect(llama), ToolFamily::Llama3);
        let chatml = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>{% endfor %}";
        assert_eq!(ToolFamily::detect(chatml), ToolFamily::Generic);
    }

    #[test]
    fn ids_have_the_family_form() {
        let a = ToolFamily::Hermes.new_id();
        assert!(a.starts_with("call_") && a.len() == 29, "{a}");
        assert_ne!(a, ToolFamily::Hermes.new_id());
        let m = ToolFamily::Mistral.new_id();
        assert!(m.len() == 9 && m.bytes().all(|b| b.is_ascii_alphanumeric()), "{m}");
    }

    #[test]
    fn names() {
        assert!(valid_name("get_weather-2"));
        assert!(!valid_name("") && !valid_name("a b") && !valid_name(&"x".repeat(65)));
    }
}
