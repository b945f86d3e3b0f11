//! A streamed response as typed server-sent events, each with its `sequence_number`:
//! `response.created`, `response.in_progress`, per output item `response.output_item.added`,
//! its text (`response.content_part.added`, `response.output_text.delta`s, `..done`) or
//! arguments (`response.function_call_arguments.delta`s, `..done`), `response.output_item.done`,
//! then `response.completed` (or `response.incomplete`). An error midway is an `error` event.

use super::{call_item, message_item, object, text_part, usage, Echo};
use crate::http::error::ApiError;
use crate::pipeline::stream::StreamFormat;
use hearth_engine::{Completion, FinishReason, ToolEvent, ToolFamily, ToolParser};
use serde_json::{json, Value};

/// The open output item.
enum Item {
    /// A message: its id and text so far.
    Text { id: String, text: String },
    /// A call: its item id, call id, name and arguments so far.
    Call { id: String, call_id: String, name: String, args: String },
}

/// Frames one response's events.
pub(crate) struct Events {
    id: String,
    model: String,
    echo: Echo,
    parser: Option<ToolParser>,
    seq: u64,
    open: Option<Item>,
    /// Finished output items.
    output: Vec<Value>,
    finish: FinishReason,
}

impl Events {
    pub(crate) fn new(id: String, model: String, echo: Echo, tools: Option<ToolFamily>) -> Self {
        let parser = tools.map(ToolParser::new);
        Self { id, model, echo, parser, seq: 0, open: None, output: Vec::new(), finish: FinishReason::Stop }
    }

    fn emit(&mut self, kind: &str, mut data: Value) -> String {
        data["type"] = kind.into();
        data["sequence_number"] = self.seq.into();
        self.seq += 1;
        format!("event: {kind}\ndata: {data}\n\n")
    }

    fn index(&self) -> usize {
        self.output.len()
    }

    fn close(&mut self, out: &mut Vec<String>) {
        let i = self.index();
        let item = match self.open.take() {
            None => return,
            Some(Item::Text { id, text }) => {
                let at = json!({"item_id": id, "output_index": i, "content_index": 0});
                out.push(self.emit("response.output_text.done", merge(&at, json!({"text": text, "logprobs": []}))));
                out.push(self.emit("response.content_part.done", merge(&at, json!({"part": text_part(&text)}))));
                message_item(&id, &text, super::item_status(self.finish))
            }
            Some(Item::Call { id, call_id, name, args }) => {
                let data = json!({"item_id": id, "output_index": i, "arguments": args, "name": name});
                out.push(self.emit("response.function_call_arguments.done", data));
                call_item(&id, &call_id, &name, &args, super::item_status(self.finish))
            }
        };
        out.push(self.emit("response.output_item.done", json!({"output_index": i, "item": item})));
        self.output.push(item);
    }

    fn text_delta(&mut self, delta: String, out: &mut Vec<String>) {
        if delta.is_empty() {
            return;
        }
        if !matches!(self.open, Some(Item::Text { .. })) {
            self.close(out);
            let id = crate::http::ids::new_id("msg");
            let i = self.index();
            out.push(self.emit(
                "response.output_item.added",
                json!({"output_index": i, "item": message_item(&id, "", "in_progress")}),
            ));
            let part = json!({"item_id": id, "output_index": i, "content_index": 0, "part": text_part("")});
            out.push(self.emit("response.content_part.added", part));
            self.open = Some(Item::Text { id, text: String::new() });
        }
        let i = self.index();
        if let Some(Item::Text { id, text }) = self.open.as_mut() {
            text.push_str(&delta);
            let data = json!({"item_id": id, "output_index": i, "content_index": 0, "delta": delta, "logprobs": []});
            out.push(self.emit("response.output_text.delta", data));
        }
    }

    fn on(&mut self, events: Vec<ToolEvent>, out: &mut Vec<String>) {
        for e in events {
            match e {
                ToolEvent::Content(t) => self.text_delta(t, out),
                ToolEvent::Start { id: call_id, name, .. } => {
                    self.close(out);
                    let id = crate::http::ids::new_id("fc");
                    let i = self.index();
                    let item = call_item(&id, &call_id, &name, "", "in_progress");
                    out.push(self.emit("response.output_item.added", json!({"output_index": i, "item": item})));
                    self.open = Some(Item::Call { id, call_id, name, args: String::new() });
                }
                ToolEvent::Args { text, .. } => {
                    let i = self.index();
                    if let Some(Item::Call { id, args, .. }) = self.open.as_mut() {
                        args.push_str(&text);
                        let data = json!({"item_id": id, "output_index": i, "delta": text});
                        out.push(self.emit("response.function_call_arguments.delta", data));
                    }
                }
            }
        }
    }

    fn response(&self, status: &str, total: Option<&Completion>) -> Value {
        let o = object(&self.echo, &self.id, &self.model, status, self.output.clone(), total.map(usage));
        serde_json::to_value(o).unwrap_or_default()
    }
}

fn merge(a: &Value, b: Value) -> Value {
    let mut a = a.clone();
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

impl StreamFormat for Events {
    fn opening(&mut self, _choices: usize) -> Vec<String> {
        let r = self.response("in_progress", None);
        vec![
            self.emit("response.created", json!({"response": r})),
            self.emit("response.in_progress", json!({"response": r})),
        ]
    }

    fn text(&mut self, _index: usize, text: String) -> Vec<String> {
        let mut out = Vec::new();
        let events = crate::pipeline::tools::events(self.parser.as_mut(), text);
        self.on(events, &mut out);
        out
    }

    fn finish(&mut self, _index: usize, finish: FinishReason) -> Vec<String> {
        let mut out = Vec::new();
        self.finish = finish;
        let rest = crate::pipeline::tools::rest(self.parser.as_mut());
        self.on(rest, &mut out);
        self.close(&mut out);
        out
    }

    fn done(&mut self, total: &Completion) -> Vec<String> {
        let (kind, status) = match self.finish {
            FinishReason::Stop => ("response.completed", "completed"),
            FinishReason::Length => ("response.incomplete", "incomplete"),
        };
        let r = self.response(status, Some(total));
        vec![self.emit(kind, json!({"response": r}))]
    }

    fn end(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn error(&mut self, e: ApiError) -> String {
        crate::pipeline::stream::log_failure(&e);
        let d = e.body().error;
        self.emit("error", json!({"code": d.code, "message": d.message, "param": d.param}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> Echo {
        Echo {
            instructions: None,
            max_output_tokens: None,
            temperature: None,
            top_p: None,
            tool_choice: json!("auto"),
            tools: Vec::new(),
            text: json!({"format": {"type": "text"}}),
            metadata: json!({}),
            parallel_tool_calls: false,
        }
    }

    #[test]
    fn text_then_call_items_with_sequence_numbers() {
        let mut f = Events::new("resp_1".into(), "m".into(), echo(), Some(ToolFamily::Hermes));
        let mut out = f.opening(1);
        for p in ["Checking. ", "<tool_call>\n{\"name\": \"w\", \"arguments\": {\"a\": 1}}\n</tool_call>"] {
            out.extend(f.text(0, p.to_string()));
        }
        out.extend(f.finish(0, FinishReason::Stop));
        out.extend(f.done(&Completion { prompt_tokens: 5, completion_tokens: 9, ..Completion::default() }));
        let ev: Vec<Value> =
            out.iter().map(|e| serde_json::from_str(e.trim_end().split_once("data: ").unwrap().1).unwrap()).collect();
        let kinds: Vec<&str> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds[..4],
            ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
        );
        assert!(kinds.contains(&"response.function_call_arguments.done"));
        assert_eq!(kinds.last(), Some(&"response.completed"));
        assert!(ev.iter().enumerate().all(|(i, e)| e["sequence_number"] == i as u64));
        let last = &ev.last().unwrap()["response"];
        assert_eq!(last["output"][0]["content"][0]["text"], "Checking.");
        assert_eq!(last["output"][1]["type"], "function_call");
        assert_eq!(serde_json::from_str::<Value>(last["output"][1]["arguments"].as_str().unwrap()).unwrap()["a"], 1);
        assert_eq!(last["usage"]["total_tokens"], 14);
    }
}
