//! A streamed message as Anthropic's named server-sent events: `message_start`, then per
//! content block `content_block_start`, `content_block_delta`s (`text_delta` or
//! `input_json_delta`) and `content_block_stop`, then `message_delta` (stop reason, output
//! tokens) and `message_stop`. An error midway is an `error` event.

use crate::http::error::ApiError;
use crate::pipeline::stream::StreamFormat;
use hearth_engine::{Completion, FinishReason, ToolEvent, ToolFamily, ToolParser};
use serde_json::{json, Value};

/// The open content block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Tool,
}

/// Frames one message's events.
pub(crate) struct Events {
    id: String,
    model: String,
    /// Prompt tokens, and of those read from the KV cache.
    prompt: (u32, u32),
    parser: Option<ToolParser>,
    /// The open block and its index.
    open: Option<(Block, usize)>,
    /// Blocks opened so far.
    blocks: usize,
    called: bool,
    finish: FinishReason,
}

fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

impl Events {
    pub(crate) fn new(id: String, model: String, prompt: (u32, u32), tools: Option<ToolFamily>) -> Self {
        let parser = tools.map(ToolParser::new);
        Self { id, model, prompt, parser, open: None, blocks: 0, called: false, finish: FinishReason::Stop }
    }

    fn close(&mut self, out: &mut Vec<String>) {
        if let Some((_, index)) = self.open.take() {
            out.push(event("content_block_stop", &json!({"type": "content_block_stop", "index": index})));
        }
    }

    fn start(&mut self, block: Block, content_block: Value, out: &mut Vec<String>) -> usize {
        self.close(out);
        let index = self.blocks;
        self.blocks += 1;
        self.open = Some((block, index));
        let data = json!({"type": "content_block_start", "index": index, "content_block": content_block});
        out.push(event("content_block_start", &data));
        index
    }

    fn text_delta(&mut self, text: String, out: &mut Vec<String>) {
        if text.is_empty() {
            return;
        }
        let index = match self.open {
            Some((Block::Text, i)) => i,
            _ => self.start(Block::Text, json!({"type": "text", "text": ""}), out),
        };
        let data =
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}});
        out.push(event("content_block_delta", &data));
    }

    fn on(&mut self, events: Vec<ToolEvent>, out: &mut Vec<String>) {
        for e in events {
            match e {
                ToolEvent::Content(t) => self.text_delta(t, out),
                ToolEvent::Start { id, name, .. } => {
                    self.called = true;
                    self.start(Block::Tool, json!({"type": "tool_use", "id": id, "name": name, "input": {}}), out);
                }
                ToolEvent::Args { text, .. } => {
                    if let Some((Block::Tool, index)) = self.open {
                        let delta = json!({"type": "input_json_delta", "partial_json": text});
                        out.push(event(
                            "content_block_delta",
                            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
                        ));
                    }
                }
            }
        }
    }
}

impl StreamFormat for Events {
    fn opening(&mut self, _choices: usize) -> Vec<String> {
        let message = json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": self.prompt.0.saturating_sub(self.prompt.1), "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": self.prompt.1},
        });
        vec![event("message_start", &json!({"type": "message_start", "message": message}))]
    }

    fn text(&mut self, _index: usize, text: String) -> Vec<String> {
        let mut out = Vec::new();
        let events = crate::pipeline::tools::events(self.parser.as_mut(), text);
        self.on(events, &mut out);
        out
    }

    fn finish(&mut self, _index: usize, finish: FinishReason) -> Vec<String> {
        let mut out = Vec::new();
        let rest = crate::pipeline::tools::rest(self.parser.as_mut());
        self.on(rest, &mut out);
        if self.blocks == 0 {
            // An empty answer still has its (empty) text block, as Anthropic sends it.
            self.start(Block::Text, json!({"type": "text", "text": ""}), &mut out);
        }
        self.close(&mut out);
        self.finish = finish;
        out
    }

    fn done(&mut self, total: &Completion) -> Vec<String> {
        let reason = super::stop_reason(self.finish, total, self.called);
        let u = super::usage(total);
        let delta = json!({
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": total.stop_sequence},
            "usage": {"output_tokens": u.output_tokens, "input_tokens": u.input_tokens, "cache_read_input_tokens": u.cache_read_input_tokens},
        });
        vec![event("message_delta", &delta), event("message_stop", &json!({"type": "message_stop"}))]
    }

    fn end(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn error(&mut self, e: ApiError) -> String {
        crate::pipeline::stream::log_failure(&e);
        event("error", &crate::http::error::shaped(crate::http::route::Protocol::Anthropic, &e.said()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(tools: Option<ToolFamily>, pieces: &[&str], finish: FinishReason) -> Vec<(String, Value)> {
        let mut f = Events::new("msg_1".into(), "m".into(), (7, 0), tools);
        let mut out = f.opening(1);
        for p in pieces {
            out.extend(f.text(0, (*p).to_string()));
        }
        out.extend(f.finish(0, finish));
        out.extend(f.done(&Completion { prompt_tokens: 7, completion_tokens: 3, ..Completion::default() }));
        out.iter()
            .map(|e| {
                let (name, data) = e.trim_end().split_once('\n').unwrap();
                (
                    name.trim_start_matches("event: ").to_string(),
                    serde_json::from_str(data.trim_start_matches("data: ")).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn text_then_tool_use_blocks_in_order() {
        let ev = events(
            Some(ToolFamily::Hermes),
            &["Sure. ", "<tool_call>\n{\"name\": \"w\", \"arguments\": {\"a\": 1}}\n</tool_call>"],
            FinishReason::Stop,
        );
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"message_start"));
        assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
        let starts: Vec<&Value> = ev.iter().filter(|(n, _)| n == "content_block_start").map(|(_, d)| d).collect();
        assert_eq!(starts.len(), 2);
        assert_eq!((starts[0]["index"].as_u64(), starts[0]["content_block"]["type"].as_str()), (Some(0), Some("text")));
        assert_eq!((starts[1]["index"].as_u64(), starts[1]["content_block"]["name"].as_str()), (Some(1), Some("w")));
        let json: String = ev.iter().filter_map(|(_, d)| d["delta"]["partial_json"].as_str()).collect();
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap()["a"], 1);
        assert_eq!(ev.iter().filter(|(n, _)| n == "content_block_stop").count(), 2);
        assert_eq!(ev[ev.len() - 2].1["delta"]["stop_reason"], "tool_use");
        assert!(ev.iter().all(|(n, d)| d["type"] == n.as_str()));
    }

    #[test]
    fn an_empty_answer_has_one_empty_text_block() {
        let ev = events(None, &[], FinishReason::Length);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["message_start", "content_block_start", "content_block_stop", "message_delta", "message_stop"]
        );
        assert_eq!(ev[3].1["delta"]["stop_reason"], "max_tokens");
    }
}
