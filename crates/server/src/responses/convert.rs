//! Responses requests translated into the chat request every protocol shares: `input` items,
//! `instructions`, `text.format`, function tools and `tool_choice`.

use crate::http::error::ApiError;
use hearth_protocol::openai::{ChatMessage, MessageContent};
use hearth_protocol::responses::Input;
use serde_json::{json, Value};

fn message(role: &str, text: String) -> ChatMessage {
    ChatMessage { role: role.into(), content: Some(MessageContent::Text(text)), ..ChatMessage::default() }
}

/// `instructions` first, then the input as chat messages; consecutive `function_call` items
/// become one assistant message's tool calls, `function_call_output` items tool messages.
///
/// # Errors
/// A 400 naming the item at fault (images, files, unknown item types).
pub(crate) fn messages(instructions: Option<String>, input: Option<Input>) -> Result<Vec<ChatMessage>, ApiError> {
    // `system`, not `developer`: chat templates know the one and may drop the other.
    let mut out: Vec<ChatMessage> = instructions.map(|i| message("system", i)).into_iter().collect();
    let items = match input {
        None => return Err(ApiError::invalid("input", "input is required")),
        Some(Input::Text(t)) => {
            out.push(message("user", t));
            return Ok(out);
        }
        Some(Input::Items(items)) => items,
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        match item.get("type").and_then(Value::as_str) {
            None | Some("message") => out.push(input_message(item, &at)?),
            Some("function_call") => {
                let call = function_call(item, &at)?;
                match out.last_mut() {
                    Some(m) if m.role == "assistant" => {
                        m.tool_calls.get_or_insert_with(Vec::new).push(call);
                    }
                    _ => out.push(ChatMessage { tool_calls: Some(vec![call]), ..message("assistant", String::new()) }),
                }
            }
            Some("function_call_output") => {
                let Some(id) = item.get("call_id").and_then(Value::as_str) else {
                    return Err(ApiError::invalid(
                        &format!("{at}.call_id"),
                        "a function_call_output item needs `call_id`",
                    ));
                };
                let text = match item.get("output") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => parts_text(v, &format!("{at}.output"))?,
                    None => String::new(),
                };
                out.push(ChatMessage { tool_call_id: Some(id.to_string()), ..message("tool", text) });
            }
            Some("reasoning") => {}
            Some(kind) => {
                return Err(ApiError::unsupported(
                    &format!("{at}.type"),
                    format!("input items of type `{kind}` are not supported"),
                ))
            }
        }
    }
    Ok(out)
}

fn input_message(item: &Value, at: &str) -> Result<ChatMessage, ApiError> {
    let role = item.get("role").and_then(Value::as_str).unwrap_or_default();
    if !matches!(role, "user" | "assistant" | "system" | "developer") {
        return Err(ApiError::invalid(&format!("{at}.role"), "role must be user, assistant, system or developer"));
    }
    let text = match item.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => parts_text(v, &format!("{at}.content"))?,
        None => return Err(ApiError::invalid(&format!("{at}.content"), "a message needs `content`")),
    };
    Ok(message(if role == "developer" { "system" } else { role }, text))
}

/// The text of content parts (`input_text`, `output_text`, `text`).
fn parts_text(v: &Value, at: &str) -> Result<String, ApiError> {
    let Some(parts) = v.as_array() else {
        return Err(ApiError::invalid(at, "content must be a string or a list of parts"));
    };
    let mut text = String::new();
    for (j, p) in parts.iter().enumerate() {
        match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
            (Some("input_text" | "output_text" | "text"), Some(t)) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            }
            (Some(kind), _) => {
                return Err(ApiError::unsupported(
                    &format!("{at}[{j}].type"),
                    format!("content parts of type `{kind}` are not supported; only text"),
                ))
            }
            (None, _) => return Err(ApiError::invalid(&format!("{at}[{j}].type"), "a content part needs a `type`")),
        }
    }
    Ok(text)
}

fn function_call(item: &Value, at: &str) -> Result<Value, ApiError> {
    let get = |k: &str| item.get(k).and_then(Value::as_str);
    let (Some(id), Some(name)) = (get("call_id"), get("name")) else {
        return Err(ApiError::invalid(at, "a function_call item needs `call_id` and `name`"));
    };
    Ok(json!({"id": id, "type": "function", "function": {"name": name, "arguments": get("arguments").unwrap_or("{}")}}))
}

/// `text.format` as `response_format`.
///
/// # Errors
/// A 400 for an unknown format type.
pub(crate) fn format(f: Option<&Value>) -> Result<Option<Value>, ApiError> {
    let Some(f) = f.filter(|f| !f.is_null()) else { return Ok(None) };
    match f.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let schema = json!({"name": f.get("name").cloned().unwrap_or(json!("format")), "schema": f.get("schema"), "strict": f.get("strict")});
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        _ => Err(ApiError::invalid("text.format.type", "text.format.type must be text, json_object or json_schema")),
    }
}

/// Function tools as chat tools.
///
/// # Errors
/// A 400 for built-in tools (web search, file search, ...).
pub(crate) fn tools(tools: Option<&[Value]>) -> Result<Option<Vec<Value>>, ApiError> {
    let Some(tools) = tools else { return Ok(None) };
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| match t.get("type").and_then(Value::as_str) {
            Some("function") => {
                let mut f =
                    json!({"name": t.get("name"), "parameters": t.get("parameters"), "strict": t.get("strict")});
                if let Some(d) = t.get("description") {
                    f["description"] = d.clone();
                }
                Ok(json!({"type": "function", "function": f}))
            }
            other => Err(ApiError::unsupported(
                &format!("tools[{i}].type"),
                format!("tools of type `{}` are not supported; only `function`", other.unwrap_or("?")),
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `tool_choice` as chat's.
pub(crate) fn tool_choice(c: Option<&Value>) -> Option<Value> {
    match c {
        Some(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("function") => {
            Some(json!({"type": "function", "function": {"name": o.get("name")}}))
        }
        other => other.cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_translate() {
        let input: Input = serde_json::from_value(json!([
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "3C"}
        ]))
        .unwrap();
        let m = messages(Some("be brief".into()), Some(input)).unwrap();
        assert_eq!(m.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(), ["system", "user", "assistant", "tool"]);
        assert_eq!(m[2].tool_calls.as_ref().unwrap().len(), 2);
        let bad: Input =
            serde_json::from_value(json!([{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]))
                .unwrap();
        assert!(messages(None, Some(bad)).is_err());
        assert_eq!(
            format(Some(&json!({"type": "json_schema", "name": "x", "schema": {}}))).unwrap().unwrap()["type"],
            "json_schema"
        );
    }
}
