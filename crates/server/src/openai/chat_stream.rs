//! Streamed chat completions: chunks per choice (role, text or tool-call pieces with their
//! log-probabilities, finish), then the usage chunk.

use crate::pipeline::generate;
use crate::pipeline::prepare::OnAnswer;
use crate::pipeline::stream::StreamFormat;
use hearth_engine::{Completion, FinishReason, TokenLogprob, ToolEvent, ToolFamily, ToolParser};
use hearth_protocol::openai::{ChatCompletionChunk, ChunkChoice, Delta, Timings, Usage};

/// One choice's state in a stream.
struct Choice {
    /// Reads tool calls out of the text when the request offers tools.
    parser: Option<ToolParser>,
    /// A tool call has begun (the choice ends with `tool_calls`).
    called: bool,
    /// With `logprobs`: reports not yet sent, for the next chunk with text.
    logprobs: Option<Vec<TokenLogprob>>,
}

/// Frames chat completion chunks.
pub(crate) struct ChatStream {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    /// Sent with the first chunk (retrieval), then none.
    citations: Option<Vec<serde_json::Value>>,
    /// The first choice's text so far, kept only when `on_answer` wants it.
    answer: String,
    on_answer: Option<OnAnswer>,
    tools: Option<ToolFamily>,
    logprobs: bool,
    choices: Vec<Choice>,
}

impl ChatStream {
    pub(crate) fn new(
        model: String,
        include_usage: bool,
        citations: Option<Vec<serde_json::Value>>,
        on_answer: Option<OnAnswer>,
        tools: Option<ToolFamily>,
        logprobs: bool,
    ) -> Self {
        Self {
            id: crate::http::ids::new_id("chatcmpl"),
            created: crate::http::ids::now_secs(),
            model,
            include_usage,
            citations,
            answer: String::new(),
            on_answer,
            tools,
            logprobs,
            choices: Vec::new(),
        }
    }

    fn chunk(&mut self, index: usize, delta: Delta, finish: Option<&str>) -> String {
        let has_text = delta.content.as_ref().is_some_and(|c| !c.is_empty()) || delta.tool_calls.is_some();
        let held = self.choices.get_mut(index).and_then(|c| c.logprobs.as_mut());
        let logprobs = match held {
            Some(l) if has_text && !l.is_empty() => Some(crate::pipeline::logprobs::chat(&std::mem::take(l))),
            _ => None,
        };
        let choice = ChunkChoice { index: index as u32, delta, logprobs, finish_reason: finish.map(Into::into) };
        self.frame(vec![choice], self.include_usage.then_some(None), None)
    }

    /// Chunks for the tool parser's events: content as text, calls as `tool_calls` pieces.
    fn tool_chunks(&mut self, index: usize, events: Vec<ToolEvent>) -> Vec<String> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let delta = match crate::pipeline::tools::delta_piece(&e) {
                Some(piece) => {
                    if let Some(c) = self.choices.get_mut(index) {
                        c.called = true;
                    }
                    Delta { tool_calls: Some(vec![piece]), ..Delta::default() }
                }
                None => match e {
                    ToolEvent::Content(t) => Delta { content: Some(t), ..Delta::default() },
                    _ => continue,
                },
            };
            out.push(self.chunk(index, delta, None));
        }
        out
    }

    fn frame(&mut self, choices: Vec<ChunkChoice>, usage: Option<Option<Usage>>, timings: Option<Timings>) -> String {
        let citations = self.citations.take();
        let c = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: crate::FINGERPRINT.into(),
            choices,
            usage,
            timings,
            citations,
        };
        crate::pipeline::stream::sse_frame(&serde_json::to_string(&c).unwrap_or_default())
    }
}

impl StreamFormat for ChatStream {
    fn opening(&mut self, choices: usize) -> Vec<String> {
        self.choices = (0..choices)
            .map(|_| Choice {
                parser: self.tools.map(ToolParser::new),
                called: false,
                logprobs: self.logprobs.then(Vec::new),
            })
            .collect();
        let role = || Delta { role: Some("assistant".into()), content: Some(String::new()), ..Delta::default() };
        (0..choices).map(|i| self.chunk(i, role(), None)).collect()
    }

    fn text(&mut self, index: usize, text: String) -> Vec<String> {
        if index == 0 && self.on_answer.is_some() {
            self.answer.push_str(&text);
        }
        match self.choices.get_mut(index).and_then(|c| c.parser.as_mut()) {
            Some(p) => {
                let events = p.push(&text);
                self.tool_chunks(index, events)
            }
            None => vec![self.chunk(index, Delta { content: Some(text), ..Delta::default() }, None)],
        }
    }

    fn logprobs(&mut self, index: usize, tokens: Vec<TokenLogprob>) {
        if let Some(l) = self.choices.get_mut(index).and_then(|c| c.logprobs.as_mut()) {
            l.extend(tokens);
        }
    }

    fn finish(&mut self, index: usize, finish: FinishReason) -> Vec<String> {
        if index == 0 {
            if let Some(f) = self.on_answer.take() {
                f(std::mem::take(&mut self.answer));
            }
        }
        let rest = self.choices.get_mut(index).and_then(|c| c.parser.as_mut()).map(ToolParser::finish);
        let mut out = match rest {
            Some((events, _)) => self.tool_chunks(index, events),
            None => Vec::new(),
        };
        let called = self.choices.get(index).is_some_and(|c| c.called);
        let finish = match finish {
            FinishReason::Stop if called => "tool_calls",
            f => f.as_str(),
        };
        out.push(self.chunk(index, Delta::default(), Some(finish)));
        out
    }

    fn done(&mut self, total: &Completion) -> Vec<String> {
        if !self.include_usage {
            return Vec::new();
        }
        let usage = Some(Some(generate::usage(total)));
        vec![self.frame(Vec::new(), usage, Some(generate::timings(total)))]
    }
}
