//! Reads tool calls out of a model's output as it streams: text before a call is content, a
//! call's name comes out as soon as it is written and its arguments fragment by fragment.
//! The whole-answer parse runs the same parser, so streamed and whole answers agree.

use super::{ToolCall, ToolFamily};
use serde_json::Value;

/// What the parser makes of new output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolEvent {
    /// Ordinary text.
    Content(String),
    /// A call begins: its id and the tool's name.
    Start {
        /// 0, 1, ... in the answer.
        index: usize,
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
    },
    /// More of a call's arguments (JSON text).
    Args {
        /// The call.
        index: usize,
        /// The fragment.
        text: String,
    },
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Plain text; a call opener may come.
    Text,
    /// After the opener: reading `{"name": "...", "arguments":`.
    Head,
    /// Streaming the arguments value.
    Args(Scan),
    /// After the arguments: skipping to the end of the call.
    Tail,
    /// A call in a shape the head reader does not know: held whole until it closes.
    Whole,
}

/// An incremental tool-call parser for one answer.
#[derive(Debug)]
pub struct ToolParser {
    family: ToolFamily,
    state: State,
    /// Output not handled yet.
    buf: String,
    /// The current call's text from its opener on (content again if it never forms).
    raw: String,
    /// Calls started.
    calls: usize,
    /// Output has begun (a Llama 3 call counts only as the whole answer).
    begun: bool,
    /// Inside Mistral's `[...]` list.
    in_list: bool,
}

enum Step<T> {
    More,
    Fail,
    Done(T),
}

macro_rules! step {
    ($e:expr) => {
        match $e {
            Step::Done(v) => v,
            Step::More => return Step::More,
            Step::Fail => return Step::Fail,
        }
    };
}

impl ToolParser {
    /// A parser for a model of `family`.
    pub fn new(family: ToolFamily) -> Self {
        Self {
            family,
            state: State::Text,
            buf: String::new(),
            raw: String::new(),
            calls: 0,
            begun: false,
            in_list: false,
        }
    }

    fn opener(&self) -> &'static str {
        match self.family {
            ToolFamily::Hermes | ToolFamily::Generic => "<tool_call>",
            ToolFamily::Mistral => "[TOOL_CALLS]",
            ToolFamily::Llama3 => "<|python_tag|>",
        }
    }

    /// Feeds new output.
    pub fn push(&mut self, text: &str) -> Vec<ToolEvent> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        while self.step(&mut out) {}
        out
    }

    /// Ends the answer: flushes held text. False when the last call was cut off midway (its
    /// arguments incomplete). An opener cut off before its call's name is content when no
    /// call came before it, and dropped after complete calls.
    pub fn finish(&mut self) -> (Vec<ToolEvent>, bool) {
        let mut out = Vec::new();
        let rest = std::mem::take(&mut self.buf);
        match self.state {
            State::Text if self.calls > 0 && self.opener().starts_with(rest.trim()) => {}
            State::Text => push_content(&mut out, rest),
            State::Head if self.calls > 0 => {}
            State::Head => push_content(&mut out, std::mem::take(&mut self.raw) + &rest),
            State::Whole => {
                let raw = std::mem::take(&mut self.raw) + &rest;
                if !self.whole_call(&raw, &mut out) && self.calls == 0 {
                    push_content(&mut out, raw);
                }
            }
            State::Args(_) => return (out, false),
            State::Tail => {}
        }
        self.state = State::Text;
        (out, true)
    }

    /// One step on the buffer; false when it needs more output.
    fn step(&mut self, out: &mut Vec<ToolEvent>) -> bool {
        match self.state {
            State::Text => self.text(out),
            State::Head => self.head(out),
            State::Args(scan) => self.args(scan, out),
            State::Tail => self.tail(),
            State::Whole => self.whole(out),
        }
    }

    fn text(&mut self, out: &mut Vec<ToolEvent>) -> bool {
        if self.family == ToolFamily::Llama3 {
            return self.llama_start(out);
        }
        let opener = self.opener();
        if let Some(at) = self.buf.find(opener) {
            let before: String = self.buf.drain(..at).collect();
            push_content(out, trim_end_if(before, self.calls > 0 || at > 0));
            self.raw = self.buf.drain(..opener.len()).collect();
            self.state = State::Head;
            return true;
        }
        // Hold back what may be the start of an opener, and the whitespace before it.
        let mut keep = partial_suffix(&self.buf, opener);
        let trimmed = self.buf[..self.buf.len() - keep].trim_end().len();
        keep = self.buf.len() - trimmed;
        let emit: String = self.buf.drain(..self.buf.len() - keep).collect();
        push_content(out, emit);
        false
    }

    /// Llama 3 calls are the whole answer: `{` (or `<|python_tag|>`) first, after whitespace.
    fn llama_start(&mut self, out: &mut Vec<ToolEvent>) -> bool {
        if self.begun {
            push_content(out, std::mem::take(&mut self.buf));
            return false;
        }
        let t = self.buf.trim_start();
        let tag = self.opener();
        if t.is_empty() || (tag.starts_with(t) && t != tag) {
            return false;
        }
        self.begun = true;
        if let Some(after) = t.strip_prefix(tag) {
            self.raw = self.buf.clone();
            self.buf = after.to_string();
            self.state = State::Head;
        } else if t.starts_with('{') {
            self.raw = String::new();
            self.state = State::Head;
        }
        true
    }

    fn head(&mut self, out: &mut Vec<ToolEvent>) -> bool {
        if self.family == ToolFamily::Mistral && !self.in_list {
            let t = self.buf.trim_start();
            match t.chars().next() {
                None => return false,
                Some('[') => {
                    let skip = self.buf.len() - t.len() + 1;
                    self.raw.extend(self.buf.drain(..skip));
                    self.in_list = true;
                }
                Some(_) => {
                    self.state = State::Whole;
                    return true;
                }
            }
        }
        let keys: &[&str] = match self.family {
            ToolFamily::Llama3 => &["parameters", "arguments"],
            _ => &["arguments"],
        };
        match read_head(&self.buf, keys) {
            Step::More => false,
            Step::Fail => {
                self.state = State::Whole;
                true
            }
            Step::Done((name, used)) => {
                self.raw.extend(self.buf.drain(..used));
                let index = self.calls;
                self.calls += 1;
                out.push(ToolEvent::Start { index, id: self.family.new_id(), name });
                self.state = State::Args(Scan::default());
                true
            }
        }
    }

    fn args(&mut self, mut scan: Scan, out: &mut Vec<ToolEvent>) -> bool {
        let (from, end) = scan.feed(&self.buf);
        let index = self.calls - 1;
        let upto = end.unwrap_or(self.buf.len());
        if upto > from {
            out.push(ToolEvent::Args { index, text: self.buf[from..upto].to_string() });
        }
        self.buf.drain(..upto);
        self.state = if end.is_some() { State::Tail } else { State::Args(scan) };
        end.is_some()
    }

    fn tail(&mut self) -> bool {
        let found = match self.family {
            ToolFamily::Hermes | ToolFamily::Generic => {
                self.buf.find("</tool_call>").map(|at| (at + "</tool_call>".len(), false))
            }
            ToolFamily::Llama3 => self.buf.find('}').map(|at| (at + 1, false)),
            ToolFamily::Mistral => self.buf.find([',', ']']).map(|at| (at + 1, &self.buf[at..=at] == ",")),
        };
        let Some((used, next_in_list)) = found else { return false };
        self.buf.drain(..used);
        self.raw.clear();
        if next_in_list {
            self.state = State::Head;
        } else {
            self.in_list = false;
            self.state = State::Text;
        }
        true
    }

    fn whole(&mut self, out: &mut Vec<ToolEvent>) -> bool {
        let close = match self.family {
            ToolFamily::Hermes | ToolFamily::Generic => "</tool_call>",
            // Other families' odd shapes are read when the answer ends.
            _ => return false,
        };
        let Some(at) = self.buf.find(close) else { return false };
        let inner: String = self.buf.drain(..at + close.len()).collect();
        let raw = std::mem::take(&mut self.raw) + &inner;
        if !self.whole_call(&inner[..at], out) {
            push_content(out, raw);
        }
        self.state = State::Text;
        true
    }

    /// Reads calls written in a shape the streaming head does not know (keys reordered,
    /// OpenAI's `{"function": {...}}` wrapping); false if it is no call at all.
    fn whole_call(&mut self, text: &str, out: &mut Vec<ToolEvent>) -> bool {
        let t = text.trim().trim_start_matches(self.opener()).trim();
        let Ok(v) = serde_json::from_str::<Value>(t) else { return false };
        let items = match v {
            Value::Array(a) => a,
            v => vec![v],
        };
        let mut calls = Vec::new();
        for item in &items {
            let f = item.get("function").unwrap_or(item);
            let Some(name) = f.get("name").and_then(Value::as_str) else { return false };
            let args = match f.get("arguments").or_else(|| f.get("parameters")) {
                Some(Value::String(s)) => s.clone(),
                Some(a) => a.to_string(),
                None => "{}".into(),
            };
            calls.push((name.to_string(), args));
        }
        for (name, text) in calls {
            let index = self.calls;
            self.calls += 1;
            out.push(ToolEvent::Start { index, id: self.family.new_id(), name });
            out.push(ToolEvent::Args { index, text });
        }
        true
    }
}

fn push_content(out: &mut Vec<ToolEvent>, s: String) {
    if !s.is_empty() {
        out.push(ToolEvent::Content(s));
    }
}

fn trim_end_if(s: String, trim: bool) -> String {
    if trim {
        s.trim_end().to_string()
    } else {
        s
    }
}

/// Length of the longest suffix of `s` that is a proper prefix of `word`.
fn partial_suffix(s: &str, word: &str) -> usize {
    (1..word.len().min(s.len() + 1))
        .rev()
        .find(|&n| s.is_char_boundary(s.len() - n) && word.starts_with(&s[s.len() - n..]))
        .unwrap_or(0)
}

/// Reads `{"name": "<name>", "<key>":` (whitespace anywhere); the name and the bytes used.
fn read_head(s: &str, keys: &[&str]) -> Step<(String, usize)> {
    let mut c = Cursor { s: s.as_bytes(), i: 0 };
    c.ws();
    step!(c.lit("{"));
    c.ws();
    step!(c.lit("\"name\""));
    c.ws();
    step!(c.lit(":"));
    c.ws();
    let name = step!(c.string());
    c.ws();
    step!(c.lit(","));
    c.ws();
    let mut found = Step::Fail;
    for k in keys {
        let mut probe = Cursor { s: c.s, i: c.i };
        match probe.lit(&format!("\"{k}\"")) {
            Step::Done(()) => {
                c = probe;
                found = Step::Done(());
                break;
            }
            Step::More => found = Step::More,
            Step::Fail => {}
        }
    }
    step!(found);
    c.ws();
    step!(c.lit(":"));
    Step::Done((name, c.i))
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn lit(&mut self, l: &str) -> Step<()> {
        let avail = &self.s[self.i..];
        if avail.starts_with(l.as_bytes()) {
            self.i += l.len();
            Step::Done(())
        } else if l.as_bytes().starts_with(avail) {
            Step::More
        } else {
            Step::Fail
        }
    }

    fn string(&mut self) -> Step<String> {
        match self.s.get(self.i) {
            None => return Step::More,
            Some(b'"') => {}
            Some(_) => return Step::Fail,
        }
        let mut j = self.i + 1;
        while j < self.s.len() {
            match self.s[j] {
                b'\\' => j += 2,
                b'"' => {
                    let lit = std::str::from_utf8(&self.s[self.i..=j]).ok();
                    let Some(v) = lit.and_then(|l| serde_json::from_str::<String>(l).ok()) else { return Step::Fail };
                    self.i = j + 1;
                    return Step::Done(v);
                }
                _ => j += 1,
            }
        }
        Step::More
    }
}

/// Where a JSON value ends, fed in pieces.
#[derive(Debug, Clone, Copy, Default)]
struct Scan {
    began: bool,
    depth: u32,
    in_str: bool,
    esc: bool,
    /// A scalar that is not a string (ends at a delimiter).
    bare: bool,
}

impl Scan {
    /// Scans `s`: where the value's text starts in it (after leading whitespace) and, if the
    /// value ends in it, the index just past its end.
    fn feed(&mut self, s: &str) -> (usize, Option<usize>) {
        let b = s.as_bytes();
        let mut from = 0;
        for (i, &c) in b.iter().enumerate() {
            if !self.began {
                if c.is_ascii_whitespace() {
                    from = i + 1;
                    continue;
                }
                self.began = true;
                match c {
                    b'{' | b'[' => self.depth = 1,
                    b'"' => self.in_str = true,
                    _ => self.bare = true,
                }
                continue;
            }
            if self.bare {
                if matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace() {
                    return (from, Some(i));
                }
                continue;
            }
            if self.in_str {
                match (self.esc, c) {
                    (true, _) => self.esc = false,
                    (false, b'\\') => self.esc = true,
                    (false, b'"') => {
                        self.in_str = false;
                        if self.depth == 0 {
                            return (from, Some(i + 1));
                        }
                    }
                    _ => {}
                }
                continue;
            }
            match c {
                b'"' => self.in_str = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return (from, Some(i + 1));
                    }
                }
                _ => {}
            }
        }
        (from, None)
    }
}

/// A whole answer, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The text that is not a call (`None` when there is none besides calls).
    pub content: Option<String>,
    /// The calls, in order.
    pub calls: Vec<ToolCall>,
}

/// Reads a whole answer. A call cut off midway (at `length`) is dropped; when it is the only
/// one, the whole answer is content.
pub fn parse_output(family: ToolFamily, text: &str) -> Parsed {
    let mut p = ToolParser::new(family);
    let mut events = p.push(text);
    let (rest, complete) = p.finish();
    events.extend(rest);
    if !complete {
        let cut = p.calls - 1;
        if cut == 0 {
            return Parsed { content: Some(text.to_string()), calls: Vec::new() };
        }
        events
            .retain(|e| !matches!(e, ToolEvent::Start { index, .. } | ToolEvent::Args { index, .. } if *index == cut));
    }
    let mut content = String::new();
    let mut calls: Vec<ToolCall> = Vec::new();
    for e in events {
        match e {
            ToolEvent::Content(t) => content.push_str(&t),
            ToolEvent::Start { id, name, .. } => calls.push(ToolCall { id, name, arguments: String::new() }),
            ToolEvent::Args { index, text } => {
                if let Some(c) = calls.get_mut(index) {
                    c.arguments.push_str(&text);
                }
            }
        }
    }
    if calls.is_empty() {
        return Parsed { content: Some(content).filter(|c| !c.is_empty()), calls };
    }
    let content = content.trim().to_string();
    Parsed { content: Some(content).filter(|c| !c.is_empty()), calls }
}

#[cfg(test)]
mod tests;
