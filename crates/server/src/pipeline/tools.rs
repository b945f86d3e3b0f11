//! Tool calling on the OpenAI wire: `tools`, `tool_choice` and `parallel_tool_calls` checked
//! into the engine's [`ToolRequest`]; calls read back out as `message.tool_calls` or as
//! streamed `delta.tool_calls`.

use crate::http::error::ApiError;
use hearth_engine::constraint::strict;
use hearth_engine::tools::valid_name;
use hearth_engine::{Tool, ToolCall, ToolChoice, ToolEvent, ToolParser, ToolRequest};
use hearth_protocol::openai::{FunctionCall, FunctionDelta, ToolCall as WireCall, ToolCallDelta};
use serde_json::{json, Value};

/// Most tools one request may offer (OpenAI's limit).
const MAX_TOOLS: usize = 128;

/// The tools a request offers, or `None` when it offers none (or `tool_choice` is `none`).
///
/// # Errors
/// A 400 naming the field at fault.
pub fn tool_request(
    tools: Option<&[Value]>,
    choice: Option<&Value>,
    parallel: Option<bool>,
) -> Result<Option<ToolRequest>, ApiError> {
    let tools = tools.unwrap_or_default();
    if tools.len() > MAX_TOOLS {
        return Err(ApiError::invalid("tools", format!("at most {MAX_TOOLS} tools are allowed, got {}", tools.len())));
    }
    let tools: Vec<Tool> = tools.iter().enumerate().map(|(i, t)| tool(i, t)).collect::<Result<_, _>>()?;
    for (i, t) in tools.iter().enumerate() {
        if tools[..i].iter().any(|u| u.name == t.name) {
            return Err(ApiError::invalid(
                &format!("tools[{i}].function.name"),
                format!("tool `{}` is given twice", t.name),
            ));
        }
    }
    let choice = match choice {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(Value::String(s)) if s == "none" => return Ok(None),
        Some(Value::String(s)) if s == "auto" => ToolChoice::Auto,
        Some(Value::String(s)) if s == "required" => ToolChoice::Required,
        Some(v) => named(v, &tools)?,
    };
    if tools.is_empty() {
        return match choice {
            ToolChoice::Auto => Ok(None),
            _ => Err(ApiError::invalid("tool_choice", "tool_choice needs `tools`")),
        };
    }
    // Off unless asked for, as in llama-server: small models repeat a call until `length`.
    Ok(Some(ToolRequest { tools, choice, parallel: parallel.unwrap_or(false) }))
}

fn tool(i: usize, t: &Value) -> Result<Tool, ApiError> {
    let at = |f: &str| format!("tools[{i}]{f}");
    if t.get("type").and_then(Value::as_str) != Some("function") {
        return Err(ApiError::invalid(&at(".type"), "only tools of type `function` are supported"));
    }
    let Some(f) = t.get("function").filter(|f| f.is_object()) else {
        return Err(ApiError::invalid(&at(".function"), "a tool needs a `function` object"));
    };
    let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
    if !valid_name(name) {
        return Err(ApiError::invalid(&at(".function.name"), "a function name is 1-64 letters, digits, '_' or '-'"));
    }
    let description = match f.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(d)) => d.clone(),
        Some(_) => return Err(ApiError::invalid(&at(".function.description"), "`description` must be a string")),
    };
    let parameters = match f.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(p @ Value::Object(_)) => p.clone(),
        Some(_) => {
            return Err(ApiError::invalid(&at(".function.parameters"), "`parameters` must be a JSON Schema object"))
        }
    };
    let parameters =
        if f.get("strict").and_then(Value::as_bool) == Some(true) { strict(&parameters) } else { parameters };
    Ok(Tool { name: name.to_string(), description, parameters })
}

fn named(v: &Value, tools: &[Tool]) -> Result<ToolChoice, ApiError> {
    let name = (v.get("type").and_then(Value::as_str) == Some("function"))
        .then(|| v.get("function").and_then(|f| f.get("name")).and_then(Value::as_str))
        .flatten();
    let Some(name) = name else {
        return Err(ApiError::invalid(
            "tool_choice",
            "tool_choice must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}",
        ));
    };
    if !tools.iter().any(|t| t.name == name) {
        return Err(ApiError::invalid("tool_choice", format!("tool_choice names `{name}`, which is not in `tools`")));
    }
    Ok(ToolChoice::Named(name.to_string()))
}

/// An earlier answer's tool calls as chat templates read them (`arguments` parsed into an
/// object where it is JSON, as Hugging Face templates expect).
///
/// # Errors
/// A 400 naming `param` when a call is not `{"id", "type", "function": {"name", "arguments"}}`.
pub fn history_calls(param: &str, calls: &[Value]) -> Result<Vec<Value>, ApiError> {
    calls
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let f = c.get("function");
            let name = f.and_then(|f| f.get("name")).and_then(Value::as_str);
            let Some(name) = name else {
                return Err(ApiError::invalid(
                    &format!("{param}[{j}].function.name"),
                    "a tool call needs a function name",
                ));
            };
            let args = match f.and_then(|f| f.get("arguments")) {
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
                Some(v) => v.clone(),
                None => json!({}),
            };
            let id = c.get("id").cloned().unwrap_or(Value::Null);
            Ok(json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
        })
        .collect()
}

/// Calls as the wire gives them.
pub fn wire_calls(calls: Vec<ToolCall>) -> Vec<WireCall> {
    calls
        .into_iter()
        .map(|c| WireCall {
            id: c.id,
            kind: "function".into(),
            function: FunctionCall { name: c.name, arguments: c.arguments },
        })
        .collect()
}

/// The events of streamed text: the tool parser's when tools were offered, else the text as
/// content.
pub fn events(parser: Option<&mut ToolParser>, text: String) -> Vec<ToolEvent> {
    match parser {
        Some(p) => p.push(&text),
        None => vec![ToolEvent::Content(text)],
    }
}

/// The events the tool parser still holds when the text ends (none without tools).
pub fn rest(parser: Option<&mut ToolParser>) -> Vec<ToolEvent> {
    parser.map(|p| p.finish().0).unwrap_or_default()
}

/// A parser event as a stream delta's tool-call piece (`None` for content).
pub fn delta_piece(e: &ToolEvent) -> Option<ToolCallDelta> {
    match e {
        ToolEvent::Content(_) => None,
        ToolEvent::Start { index, id, name } => Some(ToolCallDelta {
            index: *index as u32,
            id: Some(id.clone()),
            kind: Some("function".into()),
            function: FunctionDelta { name: Some(name.clone()), arguments: Some(String::new()) },
        }),
        ToolEvent::Args { index, text } => Some(ToolCallDelta {
            index: *index as u32,
            id: None,
            kind: None,
            function: FunctionDelta { name: None, arguments: Some(text.clone()) },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param<T: std::fmt::Debug>(r: Result<T, ApiError>) -> Option<String> {
        match r {
            Err(ApiError::BadRequest { param, .. }) => param,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    fn weather() -> Value {
        json!({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}})
    }

    #[test]
    fn choices() {
        let tools = [weather()];
        let r = tool_request(Some(&tools), None, None).unwrap().unwrap();
        assert_eq!((r.choice, r.parallel), (ToolChoice::Auto, false));
        assert_eq!(r.tools[0].parameters["additionalProperties"], false, "strict closes the object");
        assert!(tool_request(Some(&tools), Some(&json!("none")), None).unwrap().is_none());
        let named = json!({"type": "function", "function": {"name": "get_weather"}});
        let r = tool_request(Some(&tools), Some(&named), Some(false)).unwrap().unwrap();
        assert_eq!((r.choice, r.parallel), (ToolChoice::Named("get_weather".into()), false));
        assert!(tool_request(None, None, None).unwrap().is_none());
    }

    #[test]
    fn bad_tools_name_their_field() {
        let tools = [weather()];
        let other = json!({"type": "function", "function": {"name": "other"}});
        assert_eq!(param(tool_request(Some(&tools), Some(&other), None)).as_deref(), Some("tool_choice"));
        assert_eq!(param(tool_request(Some(&tools), Some(&json!("maybe")), None)).as_deref(), Some("tool_choice"));
        assert_eq!(param(tool_request(None, Some(&json!("required")), None)).as_deref(), Some("tool_choice"));
        let bad = [json!({"type": "function", "function": {"name": "has space"}})];
        assert_eq!(param(tool_request(Some(&bad), None, None)).as_deref(), Some("tools[0].function.name"));
        let bad = [json!({"type": "retrieval"})];
        assert_eq!(param(tool_request(Some(&bad), None, None)).as_deref(), Some("tools[0].type"));
        let bad = [weather(), weather()];
        assert_eq!(param(tool_request(Some(&bad), None, None)).as_deref(), Some("tools[1].function.name"));
        let bad = [json!({"type": "function", "function": {"name": "f", "parameters": "x"}})];
        assert_eq!(param(tool_request(Some(&bad), None, None)).as_deref(), Some("tools[0].function.parameters"));
    }

    #[test]
    fn history_arguments_become_objects() {
        let calls = [json!({"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}})];
        assert_eq!(history_calls("m", &calls).unwrap()[0]["function"]["arguments"], json!({"a": 1}));
        let bad = [json!({"id": "c"})];
        assert_eq!(
            param(history_calls("messages[1].tool_calls", &bad)).as_deref(),
            Some("messages[1].tool_calls[0].function.name")
        );
    }
}
