//! Lazy grammars (tool calls under `tool_choice: auto`): the answer samples freely while
//! Hearth watches its text for the trigger; where it appears, a grammar is made and fed the
//! tokens from the trigger on, and holds from then. llama.cpp's own lazy grammar matches a
//! `std::regex` against the whole output after every token, which cost about 13% of decode
//! speed here on answers that never call a tool.

use hearth_engine::constraint::{Grammar, Trigger};
use hearth_engine::error::GrammarError;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::sync::Arc;

/// A slot's lazy grammar before its trigger.
pub(crate) struct Lazy {
    gbnf: Arc<str>,
    triggers: Vec<Trigger>,
    /// The tokens so far and where each one's text starts in `text`.
    tokens: Vec<(LlamaToken, usize)>,
    text: String,
}

impl Lazy {
    pub(crate) fn new(g: &Grammar) -> Self {
        Self { gbnf: g.gbnf.clone(), triggers: g.triggers.clone(), tokens: Vec::new(), text: String::new() }
    }

    /// Records a sampled token and its text; the grammar, fed from the trigger on, when the
    /// output now shows one. `Err` when the grammar cannot be made or refuses its own trigger
    /// (the answer then goes on unconstrained).
    pub(crate) fn push(
        &mut self,
        model: &LlamaModel,
        token: LlamaToken,
        piece: &str,
    ) -> Option<Result<LlamaSampler, GrammarError>> {
        let before = self.text.len();
        self.tokens.push((token, before));
        self.text.push_str(piece);
        let found = self.triggers.iter().find_map(|t| self.find(t, before).map(|at| (t, at)))?;
        let (trigger, at) = found;
        Some(self.engage(model, trigger, at))
    }

    /// Where `t` starts in the text, looking only where the newest piece could complete it.
    fn find(&self, t: &Trigger, before: usize) -> Option<usize> {
        match t {
            Trigger::Word(w) => {
                let mut from = before.saturating_sub(w.len());
                while !self.text.is_char_boundary(from) {
                    from -= 1;
                }
                self.text[from..].find(w.as_str()).map(|i| from + i)
            }
            Trigger::AtStart(w) => {
                let lead = self.text.len() - self.text.trim_start().len();
                self.text[lead..].starts_with(w.as_str()).then_some(lead)
            }
        }
    }

    fn engage(&self, model: &LlamaModel, trigger: &Trigger, at: usize) -> Result<LlamaSampler, GrammarError> {
        let pattern = match trigger {
            Trigger::Word(w) => format!("[\\s\\S]*?({})[\\s\\S]*", escape(w)),
            Trigger::AtStart(w) => format!("\\s*({})[\\s\\S]*", escape(w)),
        };
        let mut g = LlamaSampler::grammar_lazy_patterns(model, &self.gbnf, "root", &[pattern], &[]).map_err(|e| {
            tracing::warn!(error = %e, "llama.cpp could not parse the tool grammar");
            GrammarError::Syntax
        })?;
        // From the token the trigger starts in: the grammar's own matcher sees it again and
        // takes the text from the trigger on.
        let first = self.tokens.iter().rposition(|&(_, start)| start <= at).unwrap_or(0);
        for &(t, _) in &self.tokens[first..] {
            g.try_accept(t).map_err(|e| {
                tracing::warn!(error = %e, "the tool grammar refused the call's opening");
                GrammarError::Opening
            })?;
        }
        Ok(g)
    }

    /// Whether the trigger can still come (an `AtStart` one only at the start).
    pub(crate) fn alive(&self) -> bool {
        let t = self.text.trim_start();
        self.triggers.iter().any(|tr| match tr {
            Trigger::Word(_) => true,
            Trigger::AtStart(w) => t.is_empty() || w.starts_with(t) || t.starts_with(w.as_str()),
        })
    }
}

/// `s` as a regular expression matching it literally.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_regex_syntax() {
        assert_eq!(escape("[TOOL_CALLS]"), "\\[TOOL_CALLS\\]");
        assert_eq!(escape("<tool_call>"), "<tool_call>");
        assert_eq!(escape("{"), "\\{");
    }
}
