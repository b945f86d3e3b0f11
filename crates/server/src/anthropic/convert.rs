//! Anthropic's Messages requests translated into the chat request every protocol shares:
//! `system`, content blocks, `tool_use`/`tool_result`, tools and `tool_choice`.

use crate::http::error::ApiError;
use hearth_protocol::anthropic::{Content, Message, System};
use hearth_protocol::openai::{ChatMessage, MessageContent};
use serde_json::{json, Value};

/// The system prompt as text (blocks joined by newlines).
///
/// # Errors
/// A 400 for a block that is not text.
pub(crate) fn system(s: Option<System>) -> Result<Option<ChatMessage>, ApiError> {
    let text = match s {
        None => return Ok(None),
        Some(System::Text(t)) => t,
        Some(System::Blocks(blocks)) => {
            let mut parts = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                parts.push(text_of(b, &format!("system[{i}]"))?);
            }
            parts.join("\n")
        }
    };
    Ok(Some(message("system", text)))
}

fn message(role: &str, text: String) -> ChatMessage {
    ChatMessage { role: role.into(), content: Some(MessageContent::Text(text)), ..ChatMessage::default() }
}

fn text_of(b: &Value, at: &str) -> Result<String, ApiError> {
    match (b.get("type").and_then(Value::as_str), b.get("text").and_then(Value::as_str)) {
        (Some("text"), Some(t)) => Ok(t.to_string()),
        (Some(kind), _) => Err(ApiError::unsupported(
            &format!("{at}.type"),
            format!("blocks of type `{kind}` are not supported here; only `text`"),
        )),
        (None, _) => Err(ApiError::invalid(&format!("{at}.type"), "a content block needs a `type`")),
    }
}

/// The conversation as chat messages. A user turn's `tool_result` blocks become `tool`
/// messages (before its text); an assistant's `tool_use` blocks become its tool calls.
///
/// # Errors
/// A 400 naming the block at fault: images, documents, unknown roles.
pub(crate) fn messages(messages: Vec<Message>) -> Result<Vec<ChatMessage>, ApiError> {
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        if m.role != "user" && m.role != "assistant" {
            return Err(ApiError::invalid(&format!("messages[{i}].role"), "role must be `user` or `assistant`"));
        }
        let blocks = match m.content {
            Content::Text(t) => {
                out.push(message(&m.role, t));
                continue;
            }
            Content::Blocks(b) => b,
        };
        let (mut texts, mut calls) = (Vec::new(), Vec::new());
        for (j, b) in blocks.iter().enumerate() {
            let at = format!("messages[{i}].content[{j}]");
            match b.get("type").and_then(Value::as_str) {
                Some("text") => texts.push(text_of(b, &at)?),
                Some("tool_use") if m.role == "assistant" => calls.push(tool_use(b, &at)?),
                Some("tool_result") if m.role == "user" => out.push(tool_result(b, &at)?),
                // Earlier thinking is not the model's to read again.
                Some("thinking" | "redacted_thinking") => {}
                Some(kind @ ("image" | "document")) => {
                    return Err(ApiError::unsupported(
                        &format!("{at}.type"),
                        format!("`{kind}` blocks are not supported: the models Hearth serves read text only"),
                    ))
                }
                Some(kind) => {
                    return Err(ApiError::unsupported(
                        &format!("{at}.type"),
                        format!("`{kind}` blocks are not supported in a {} message", m.role),
                    ))
                }
                None => return Err(ApiError::invalid(&format!("{at}.type"), "a content block needs a `type`")),
            }
        }
        let text = texts.join("\n");
        if !text.is_empty() || !calls.is_empty() || m.role == "assistant" {
            let mut msg = message(&m.role, text);
            msg.tool_calls = Some(calls).filter(|c| !c.is_empty());
            out.push(msg);
        }
    }
    if out.last().is_some_and(|m| m.role == "assistant") {
        return Err(ApiError::unsupported(
            "messages",
            "a final assistant message (prefill) is not supported yet; end with a user message",
        ));
    }
    Ok(merged(out))
}

/// Consecutive user (or assistant) turns as one, as Anthropic reads them: chat templates
/// often insist that roles alternate.
fn merged(messages: Vec<ChatMessage>) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(messages.len());
    for m in messages {
        match out.last_mut() {
            Some(last) if last.role == m.role && matches!(m.role.as_str(), "user" | "assistant") => {
                let text = |c: &Option<MessageContent>| match c {
                    Some(MessageContent::Text(t)) => t.clone(),
                    _ => String::new(),
                };
                let joined = [text(&last.content), text(&m.content)].into_iter().filter(|t| !t.is_empty());
                last.content = Some(MessageContent::Text(joined.collect::<Vec<_>>().join("\n\n")));
                if let Some(calls) = m.tool_calls {
                    last.tool_calls.get_or_insert_with(Vec::new).extend(calls);
                }
            }
            _ => out.push(m),
        }
    }
    out
}

fn tool_use(b: &Value, at: &str) -> Result<Value, ApiError> {
    let (Some(id), Some(name)) = (b.get("id").and_then(Value::as_str), b.get("name").and_then(Value::as_str)) else {
        return Err(ApiError::invalid(at, "a tool_use block needs `id` and `name`"));
    };
    let input = match b.get("input") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(ApiError::invalid(&format!("{at}.input"), "a tool_use block's `input` must be an object"))
        }
    };
    Ok(json!({"id": id, "type": "function", "function": {"name": name, "arguments": input.to_string()}}))
}

fn tool_result(b: &Value, at: &str) -> Result<ChatMessage, ApiError> {
    let Some(id) = b.get("tool_use_id").and_then(Value::as_str) else {
        return Err(ApiError::invalid(&format!("{at}.tool_use_id"), "a tool_result block needs `tool_use_id`"));
    };
    let mut text = match b.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut t = Vec::new();
            for (k, p) in parts.iter().enumerate() {
                t.push(text_of(p, &format!("{at}.content[{k}]"))?);
            }
            t.join("\n")
        }
        Some(_) => return Err(ApiError::invalid(&format!("{at}.content"), "content must be a string or text blocks")),
    };
    if b.get("is_error").and_then(Value::as_bool) == Some(true) {
        text = format!("Error: {text}");
    }
    Ok(ChatMessage { tool_call_id: Some(id.to_string()), ..message("tool", text) })
}

/// Tools as chat tools: `input_schema` is the function's parameters.
///
/// # Errors
/// A 400 for server tools (a `type` such as `web_search_20250305`) or a tool without a name.
pub(crate) fn tools(tools: Option<Vec<Value>>) -> Result<Option<Vec<Value>>, ApiError> {
    let Some(tools) = tools else { return Ok(None) };
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if let Some(kind) = t.get("type").and_then(Value::as_str).filter(|k| *k != "custom") {
                return Err(ApiError::unsupported(
                    &format!("tools[{i}].type"),
                    format!("tools of type `{kind}` are not supported; only client tools with `input_schema`"),
                ));
            }
            let mut f = json!({"name": t.get("name"), "parameters": t.get("input_schema")});
            if let Some(d) = t.get("description") {
                f["description"] = d.clone();
            }
            Ok(json!({"type": "function", "function": f}))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `tool_choice` as chat's, and whether several calls are allowed (`None`: Hearth's default,
/// one call).
///
/// # Errors
/// A 400 for an unknown type.
pub(crate) fn tool_choice(c: Option<&Value>) -> Result<(Option<Value>, Option<bool>), ApiError> {
    let Some(c) = c else { return Ok((None, None)) };
    // Several calls only when asked for (`disable_parallel_tool_use: false`): Hearth's one
    // default on every protocol, because small models repeat a call until `max_tokens`.
    let parallel = c.get("disable_parallel_tool_use").and_then(Value::as_bool).map(|d| !d);
    let choice = match c.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => json!({"type": "function", "function": {"name": c.get("name")}}),
        _ => return Err(ApiError::invalid("tool_choice.type", "tool_choice.type must be auto, any, tool or none")),
    };
    Ok((Some(choice), parallel))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(v: Value) -> Result<Vec<ChatMessage>, ApiError> {
        messages(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn tool_turns_translate() {
        let out = msgs(json!([
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Let me see."}, {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "3C"}]}, {"type": "text", "text": "thanks"}]}
        ]))
        .unwrap();
        assert_eq!(out.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(), ["user", "assistant", "tool", "user"]);
        assert_eq!(out[1].tool_calls.as_ref().unwrap()[0]["function"]["arguments"], "{\"city\":\"Oslo\"}");
        assert_eq!(out[2].tool_call_id.as_deref(), Some("toolu_1"));
    }

    #[test]
    fn consecutive_turns_merge_and_prefill_is_refused() {
        let out = msgs(json!([
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]},
            {"role": "assistant", "content": "d"},
            {"role": "user", "content": "e"}
        ]))
        .unwrap();
        assert_eq!(out.len(), 3);
        assert!(matches!(&out[0].content, Some(MessageContent::Text(t)) if t == "a\n\nb\nc"));
        let e = msgs(json!([{"role": "user", "content": "a"}, {"role": "assistant", "content": "The answer is"}]))
            .unwrap_err();
        assert_eq!(e.body().error.param.as_deref(), Some("messages"));
        let bad = json!([{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": [1]}]}, {"role": "user", "content": "x"}]);
        assert_eq!(msgs(bad).unwrap_err().body().error.param.as_deref(), Some("messages[0].content[0].input"));
    }

    #[test]
    fn images_and_server_tools_are_refused() {
        let e = msgs(json!([{"role": "user", "content": [{"type": "image", "source": {}}]}])).unwrap_err();
        assert_eq!(e.body().error.param.as_deref(), Some("messages[0].content[0].type"));
        assert!(tools(Some(vec![json!({"type": "web_search_20250305", "name": "web_search"})])).is_err());
        let (c, p) = tool_choice(Some(&json!({"type": "any", "disable_parallel_tool_use": true}))).unwrap();
        assert_eq!((c, p), (Some(json!("required")), Some(false)));
        assert_eq!(tool_choice(None).unwrap().1, None, "Hearth's default");
    }
}
