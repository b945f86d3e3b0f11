//! Tools in the prompt: as the model's own template wants them, or, for a template that
//! knows no tools, described in the system message with calls and results written out.

use super::Tool;
use crate::template::TemplateMessage;
use serde_json::{json, Value};

/// The tools as chat templates expect them (OpenAI's `{"type": "function", "function": ...}`).
pub fn template_tools(tools: &[Tool]) -> Vec<Value> {
    tools
        .iter()
        .map(|t| {
            json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}})
        })
        .collect()
}

fn instructions(tools: &[Tool]) -> String {
    let mut s = String::from(
        "You can call tools. To call one, answer with only this block, one block per call:\n\
         <tool_call>\n{\"name\": \"<tool name>\", \"arguments\": <the arguments as a JSON object>}\n</tool_call>\n\
         Results come back in <tool_response> blocks. The tools:\n",
    );
    for t in tools {
        let line = json!({"name": t.name, "description": t.description, "parameters": t.parameters});
        s.push_str(&line.to_string());
        s.push('\n');
    }
    s
}

/// A call in the form the generic instructions ask for.
fn written_call(call: &Value) -> String {
    let f = call.get("function").unwrap_or(call);
    let name = f.get("name").cloned().unwrap_or(Value::Null);
    let args = match f.get("arguments") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        Some(v) => v.clone(),
        None => json!({}),
    };
    format!("<tool_call>\n{{\"name\": {name}, \"arguments\": {args}}}\n</tool_call>")
}

/// The conversation for a template without tool support: `tools` (if any) described in the
/// system message, assistant calls written as blocks, and tool results as user turns
/// (consecutive results in one turn, so roles still alternate).
pub fn generic_messages(messages: &[TemplateMessage], tools: Option<&[Tool]>) -> Vec<TemplateMessage> {
    let mut out: Vec<TemplateMessage> = Vec::with_capacity(messages.len() + 1);
    let mut rest = messages;
    if let Some(tools) = tools.filter(|t| !t.is_empty()) {
        let text = instructions(tools);
        match messages.first() {
            Some(m) if m.role == "system" || m.role == "developer" => {
                out.push(TemplateMessage { content: format!("{}\n\n{text}", m.content), ..m.clone() });
                rest = &messages[1..];
            }
            _ => out.push(TemplateMessage { role: "system".into(), content: text, ..Default::default() }),
        }
    }
    let mut last_was_result = false;
    for m in rest {
        if m.role == "tool" {
            let block = format!("<tool_response>\n{}\n</tool_response>", m.content);
            match out.last_mut() {
                Some(prev) if last_was_result => prev.content = format!("{}\n{block}", prev.content),
                _ => out.push(TemplateMessage { role: "user".into(), content: block, ..Default::default() }),
            }
            last_was_result = true;
            continue;
        }
        last_was_result = false;
        let mut m = TemplateMessage { tool_call_id: None, ..m.clone() };
        if let Some(calls) = m.tool_calls.take() {
            let blocks: Vec<String> = calls.iter().map(written_call).collect();
            let sep = if m.content.is_empty() { "" } else { "\n" };
            m.content = format!("{}{sep}{}", m.content, blocks.join("\n"));
        }
        out.push(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> TemplateMessage {
        TemplateMessage { role: role.into(), content: content.into(), ..Default::default() }
    }

    fn tool() -> Tool {
        Tool { name: "get_weather".into(), description: "Weather".into(), parameters: json!({"type": "object"}) }
    }

    #[test]
    fn tools_join_the_system_message_or_make_one() {
        let out = generic_messages(&[msg("system", "Be brief."), msg("user", "hi")], Some(&[tool()]));
        assert_eq!(out.len(), 2);
        assert!(
            out[0].content.starts_with("Be brief.\n\nYou can call tools.") && out[0].content.contains("get_weather")
        );
        let out = generic_messages(&[msg("user", "hi")], Some(&[tool()]));
        assert_eq!((out[0].role.as_str(), out[1].content.as_str()), ("system", "hi"));
    }

    #[test]
    fn calls_and_results_are_written_out() {
        let call = json!({"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}});
        let asked = TemplateMessage { tool_calls: Some(vec![call]), ..msg("assistant", "") };
        let res = |c: &str| TemplateMessage { tool_call_id: Some("call_1".into()), ..msg("tool", c) };
        let out = generic_messages(&[msg("user", "weather?"), asked, res("sunny"), res("warm")], None);
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(
            out[1].content,
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Paris\"}}\n</tool_call>"
        );
        assert!(out[1].tool_calls.is_none());
        assert_eq!(out[2].role, "user");
        assert_eq!(out[2].content, "<tool_response>\nsunny\n</tool_response>\n<tool_response>\nwarm\n</tool_response>");
    }
}
