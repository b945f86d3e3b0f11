//! Ollama requests translated into the OpenAI wire requests the shared path validates:
//! `options` into sampling fields, `format` into `response_format`, messages and tool calls.

use crate::http::error::ApiError;
use hearth_protocol::ollama::{Message, Options};
use hearth_protocol::openai::{ChatMessage, MessageContent, SamplingFields, StopSpec};
use serde_json::{json, Value};

/// Sampling fields, the token limit and the stop strings from `options`.
///
/// # Errors
/// A 400 naming the option at fault.
pub(crate) fn options(o: Option<&Options>) -> Result<(SamplingFields, Option<i64>, Option<StopSpec>), ApiError> {
    let Some(o) = o else { return Ok((SamplingFields::default(), None, None)) };
    let max = match o.num_predict {
        // -1: until the end of generation; -2: fill the context. Both are the context's limit.
        None | Some(-1) | Some(-2) => None,
        Some(n) if n >= 1 => Some(n),
        Some(n) => {
            return Err(ApiError::invalid(
                "options.num_predict",
                format!("num_predict must be -1, -2 or at least 1, got {n}"),
            ))
        }
    };
    let sampling = SamplingFields {
        temperature: o.temperature,
        top_p: o.top_p,
        top_k: o.top_k,
        min_p: o.min_p,
        repeat_penalty: o.repeat_penalty,
        presence_penalty: o.presence_penalty,
        frequency_penalty: o.frequency_penalty,
        repeat_last_n: o.repeat_last_n,
        seed: o.seed,
        logit_bias: None,
    };
    Ok((sampling, max, o.stop.clone().filter(|s| !s.is_empty()).map(StopSpec::Many)))
}

/// `format` as `response_format`: `"json"` is any JSON object, an object is a JSON Schema.
///
/// # Errors
/// A 400 for anything else.
pub(crate) fn format(f: Option<&Value>) -> Result<Option<Value>, ApiError> {
    match f {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => Ok(Some(json!({"type": "json_object"}))),
        Some(schema @ Value::Object(_)) => Ok(Some(
            json!({"type": "json_schema", "json_schema": {"name": "format", "schema": schema, "strict": true}}),
        )),
        Some(_) => Err(ApiError::invalid("format", "format must be \"json\" or a JSON Schema object")),
    }
}

/// Refuses thinking: no model Hearth serves has a thinking mode.
///
/// # Errors
/// A 400 as Ollama words it, when `think` asks for thinking.
pub(crate) fn no_thinking(think: Option<&Value>, model: &str) -> Result<(), ApiError> {
    match think {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(()),
        Some(_) => Err(ApiError::unsupported("think", format!("\"{model}\" does not support thinking"))),
    }
}

/// Refuses images: no model Hearth serves can see.
///
/// # Errors
/// A 400 naming `param`.
pub(crate) fn no_images(images: Option<&Vec<String>>, param: &str) -> Result<(), ApiError> {
    match images {
        Some(v) if !v.is_empty() => {
            Err(ApiError::unsupported(param, "images are not supported: the models Hearth serves read text only"))
        }
        _ => Ok(()),
    }
}

/// Ollama messages as chat messages: tool calls get ids and their arguments as JSON text.
///
/// # Errors
/// A 400 for images.
pub(crate) fn messages(messages: Vec<Message>) -> Result<Vec<ChatMessage>, ApiError> {
    messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            no_images(m.images.as_ref(), &format!("messages[{i}].images"))?;
            let tool_calls = m.tool_calls.map(|calls| {
                calls
                    .iter()
                    .enumerate()
                    .map(|(j, c)| {
                        let f = c.get("function").cloned().unwrap_or_default();
                        let args = match f.get("arguments") {
                            Some(Value::String(s)) => s.clone(),
                            Some(v) => v.to_string(),
                            None => "{}".into(),
                        };
                        let id =
                            c.get("id").and_then(Value::as_str).map_or_else(|| format!("call_{i}_{j}"), str::to_string);
                        json!({"id": id, "type": "function", "function": {"name": f.get("name"), "arguments": args}})
                    })
                    .collect()
            });
            Ok(ChatMessage {
                role: m.role,
                content: Some(MessageContent::Text(m.content.unwrap_or_default())),
                name: m.tool_name,
                tool_calls,
                tool_call_id: None,
            })
        })
        .collect()
}

/// A call as Ollama's clients read it: `{"function": {"index", "name", "arguments": {...}}}`.
pub(crate) fn call(index: usize, id: &str, name: &str, arguments: &str) -> Value {
    let args: Value = serde_json::from_str(arguments).ok().filter(Value::is_object).unwrap_or_else(|| json!({}));
    json!({"id": id, "function": {"index": index, "name": name, "arguments": args}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_map_and_unknown_keys_are_ignored() {
        let o: Options = serde_json::from_value(
            json!({"num_predict": 5, "temperature": 0.2, "mirostat": 2, "num_gpu": 1, "stop": ["x"]}),
        )
        .unwrap();
        let (s, max, stop) = options(Some(&o)).unwrap();
        assert_eq!((s.temperature, max), (Some(0.2), Some(5)));
        assert_eq!(stop, Some(StopSpec::Many(vec!["x".into()])));
        let o: Options = serde_json::from_value(json!({"num_predict": -1})).unwrap();
        assert_eq!(options(Some(&o)).unwrap().1, None);
        let o: Options = serde_json::from_value(json!({"num_predict": 0})).unwrap();
        assert!(options(Some(&o)).is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format(Some(&json!("json"))).unwrap().unwrap()["type"], "json_object");
        assert_eq!(format(Some(&json!({"type": "object"}))).unwrap().unwrap()["type"], "json_schema");
        assert!(format(Some(&json!(3))).is_err());
        assert!(format(Some(&json!(""))).unwrap().is_none());
    }

    #[test]
    fn history_calls_get_ids_and_text_arguments() {
        let m: Message = serde_json::from_value(json!({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]})).unwrap();
        let out = messages(vec![m]).unwrap();
        let c = &out[0].tool_calls.as_ref().unwrap()[0];
        assert_eq!(c["function"]["arguments"], "{\"a\":1}");
        assert_eq!(c["id"], "call_0_0");
        assert_eq!(call(0, "c", "f", "{\"a\":1}")["function"]["arguments"]["a"], 1);
    }
}
