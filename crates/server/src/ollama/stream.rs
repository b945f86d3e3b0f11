//! Ollama's answers: one NDJSON line per piece of text, tool calls once they are whole, and a
//! last line with `done: true`, `done_reason` and the counts and durations (nanoseconds).
//! A whole (non-streamed) answer is the same object with all the text.

use crate::http::error::ApiError;
use crate::pipeline::stream::StreamFormat;
use hearth_engine::{Completion, FinishReason, ToolEvent, ToolFamily, ToolParser};
use hearth_protocol::ollama::{ChatResponse, GenerateResponse, Message, Stats};
use serde_json::Value;
use std::time::Instant;

/// Which endpoint's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `/api/chat`: `message`.
    Chat,
    /// `/api/generate`: `response`.
    Generate,
}

/// Frames one answer as Ollama's objects.
pub(crate) struct Ndjson {
    shape: Shape,
    model: String,
    /// When the request arrived (`total_duration`).
    arrived: Instant,
    /// How tool calls are written, when tools were offered.
    tools: Option<ToolFamily>,
    /// Reads tool calls out of streamed text.
    parser: Option<ToolParser>,
    /// Calls read so far: id, name, arguments text.
    calls: Vec<(String, String, String)>,
    finish: Option<FinishReason>,
}

impl Ndjson {
    pub(crate) fn new(shape: Shape, model: String, arrived: Instant, tools: Option<ToolFamily>) -> Self {
        Self { shape, model, arrived, tools, parser: tools.map(ToolParser::new), calls: Vec::new(), finish: None }
    }

    /// One object: text, the calls (if any), and on the last one why it ended and the stats.
    pub(crate) fn object(
        &self,
        text: String,
        calls: Option<Vec<Value>>,
        end: Option<(FinishReason, &Completion)>,
    ) -> Value {
        let created_at = super::time::now();
        let done_reason = end.map(|(f, _)| f.as_str().to_string());
        let stats = end.map(|(_, c)| self.stats(c));
        let v = match self.shape {
            Shape::Chat => {
                let message =
                    Message { role: "assistant".into(), content: Some(text), tool_calls: calls, ..Message::default() };
                let r = ChatResponse {
                    model: self.model.clone(),
                    created_at,
                    message,
                    done: end.is_some(),
                    done_reason,
                    stats,
                };
                serde_json::to_value(r)
            }
            Shape::Generate => {
                let r = GenerateResponse {
                    model: self.model.clone(),
                    created_at,
                    response: text,
                    done: end.is_some(),
                    done_reason,
                    stats,
                };
                serde_json::to_value(r)
            }
        };
        v.unwrap_or_default()
    }

    /// A whole answer as one object.
    pub(crate) fn whole(self, text: String, finish: FinishReason, c: &Completion) -> Value {
        let (content, calls) = match self.tools {
            Some(family) => {
                let (content, calls) = crate::pipeline::prepare::read_answer(Some(family), text);
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| super::convert::call(i, &c.id, &c.name, &c.arguments))
                    .collect();
                (content.unwrap_or_default(), Some(calls).filter(|c| !c.is_empty()))
            }
            None => (text, None),
        };
        self.object(content, calls, Some((finish, c)))
    }

    fn stats(&self, c: &Completion) -> Stats {
        let ns = |ms: f64| (ms * 1e6).max(0.0) as u64;
        Stats {
            total_duration: self.arrived.elapsed().as_nanos() as u64,
            load_duration: 0,
            prompt_eval_count: c.prompt_tokens,
            prompt_eval_duration: ns(c.prompt_ms),
            eval_count: c.completion_tokens,
            eval_duration: ns(c.generation_ms),
        }
    }

    fn line(v: &Value) -> String {
        let mut s = serde_json::to_string(v).unwrap_or_default();
        s.push('\n');
        s
    }

    fn on_events(&mut self, events: Vec<ToolEvent>) -> Vec<String> {
        let mut out = Vec::new();
        for e in events {
            match e {
                ToolEvent::Content(t) if !t.is_empty() => out.push(Self::line(&self.object(t, None, None))),
                ToolEvent::Content(_) => {}
                ToolEvent::Start { id, name, .. } => self.calls.push((id, name, String::new())),
                ToolEvent::Args { index, text } => {
                    if let Some(c) = self.calls.get_mut(index) {
                        c.2.push_str(&text);
                    }
                }
            }
        }
        out
    }
}

impl StreamFormat for Ndjson {
    fn opening(&mut self, _choices: usize) -> Vec<String> {
        Vec::new()
    }

    fn text(&mut self, _index: usize, text: String) -> Vec<String> {
        let events = crate::pipeline::tools::events(self.parser.as_mut(), text);
        self.on_events(events)
    }

    fn finish(&mut self, _index: usize, finish: FinishReason) -> Vec<String> {
        self.finish = Some(finish);
        let rest = crate::pipeline::tools::rest(self.parser.as_mut());
        let mut out = self.on_events(rest);
        if !self.calls.is_empty() {
            let calls =
                self.calls.iter().enumerate().map(|(i, (id, n, a))| super::convert::call(i, id, n, a)).collect();
            out.push(Self::line(&self.object(String::new(), Some(calls), None)));
        }
        out
    }

    fn done(&mut self, total: &Completion) -> Vec<String> {
        let finish = self.finish.unwrap_or(FinishReason::Stop);
        vec![Self::line(&self.object(String::new(), None, Some((finish, total))))]
    }

    fn end(&mut self) -> Vec<String> {
        Vec::new()
    }

    fn error(&mut self, e: ApiError) -> String {
        crate::pipeline::stream::log_failure(&e);
        Self::line(&crate::http::error::shaped(crate::http::route::Protocol::Ollama, &e.said()))
    }

    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(f: &mut Ndjson, pieces: &[&str]) -> Vec<Value> {
        let mut out = f.opening(1);
        for p in pieces {
            out.extend(f.text(0, (*p).to_string()));
        }
        out.extend(f.finish(0, FinishReason::Stop));
        out.extend(f.done(&Completion { prompt_tokens: 9, completion_tokens: 4, ..Completion::default() }));
        out.extend(f.end());
        out.iter()
            .map(|l| {
                assert!(l.ends_with('\n') && !l[..l.len() - 1].contains('\n'), "one line per object: {l:?}");
                serde_json::from_str(l).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_streamed_call_comes_whole_with_object_arguments() {
        let mut f = Ndjson::new(Shape::Chat, "m".into(), Instant::now(), Some(ToolFamily::Hermes));
        let lines = feed(
            &mut f,
            &["<tool_call>\n{\"name\": \"w\", ", "\"arguments\": {\"city\": ", "\"Oslo\"}}\n</tool_call>"],
        );
        let call = lines.iter().find_map(|l| l["message"]["tool_calls"].as_array().cloned()).unwrap();
        assert_eq!(call[0]["function"]["name"], "w");
        assert_eq!(call[0]["function"]["arguments"]["city"], "Oslo");
        let last = lines.last().unwrap();
        assert_eq!((last["done"].as_bool(), last["eval_count"].as_u64()), (Some(true), Some(4)));
        assert!(last["total_duration"].is_u64() && last["prompt_eval_duration"].is_u64());
    }

    #[test]
    fn generate_lines_carry_response_text() {
        let mut f = Ndjson::new(Shape::Generate, "m".into(), Instant::now(), None);
        let lines = feed(&mut f, &["Hel", "lo"]);
        let text: String = lines.iter().filter_map(|l| l["response"].as_str()).collect();
        assert_eq!(text, "Hello");
        assert_eq!(lines.last().unwrap()["done_reason"], "stop");
        assert!(lines[..lines.len() - 1].iter().all(|l| l["done"] == false));
    }
}
