//! One running request on the worker: its prompt, progress, detokenizer and event sender.

use crate::backend::Token;
use crate::request::{Completion, Event, FinishReason, TokenLogprob};
use crate::stop::StopMatcher;
use crate::utf8::Utf8Decoder;
use std::time::Instant;
use tokio::sync::mpsc;

/// What happened after a token was sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Keep generating.
    Continue,
    /// Generation ended for this reason.
    Finished(FinishReason),
    /// The client went away.
    Cancelled,
}

/// A sequence admitted to a slot.
#[derive(Debug)]
pub(crate) struct Sequence {
    /// The KV slot (llama.cpp sequence id) it runs in.
    pub(crate) slot: usize,
    /// All prompt tokens.
    pub(crate) prompt: Vec<Token>,
    /// Prompt tokens already in the KV cache (reused or evaluated).
    pub(crate) n_eval: usize,
    /// Sampled token not yet evaluated.
    pub(crate) pending: Option<Token>,
    /// Generation limit.
    pub(crate) max_tokens: u32,
    /// KV cells reserved for it: prompt plus `max_tokens`.
    pub(crate) reserved: usize,
    /// Treat end-of-generation tokens as ordinary tokens.
    pub(crate) ignore_eos: bool,
    /// Tokens generated so far.
    pub(crate) generated: u32,
    /// Of those, the tokens that text events have counted.
    pub(crate) reported: u32,
    /// Prompt tokens that came from the cache.
    pub(crate) cached: u32,
    /// Bytes of a split UTF-8 character between tokens.
    pub(crate) decoder: Utf8Decoder,
    /// Stop strings.
    pub(crate) stop: StopMatcher,
    /// Where events go; closed means the client is gone.
    pub(crate) events: mpsc::Sender<Event>,
    /// When it was admitted.
    pub(crate) admitted: Instant,
    /// When its first token was sampled.
    pub(crate) first_token: Option<Instant>,
    /// When its last token was sampled.
    pub(crate) last_token: Option<Instant>,
    /// Log-probabilities waiting for their text, when the request asked for them.
    pub(crate) logprobs: Option<Logprobs>,
}

/// Token log-probabilities held until their text goes out (stop strings hold text back).
#[derive(Debug, Default)]
pub(crate) struct Logprobs {
    /// Alternatives per token.
    pub(crate) top: usize,
    held: std::collections::VecDeque<TokenLogprob>,
    /// Bytes of text sent so far.
    sent: usize,
    /// Bytes of the tokens whose log-probabilities went out.
    covered: usize,
}

impl Logprobs {
    /// For a request that wants `top` alternatives per token.
    pub(crate) fn new(top: usize) -> Self {
        Self { top, ..Self::default() }
    }

    /// Holds a sampled token's report.
    pub(crate) fn hold(&mut self, lp: TokenLogprob) {
        self.held.push_back(lp);
    }

    /// The reports whose tokens `text` (about to be sent) completes.
    fn release(&mut self, text: &str) -> Vec<TokenLogprob> {
        self.sent += text.len();
        let mut out = Vec::new();
        while self.held.front().is_some_and(|lp| self.covered + lp.bytes.len() <= self.sent) {
            if let Some(lp) = self.held.pop_front() {
                self.covered += lp.bytes.len();
                out.push(lp);
            }
        }
        out
    }
}

impl Sequence {
    /// Prompt tokens still to evaluate.
    pub(crate) fn prefill_left(&self) -> usize {
        self.prompt.len() - self.n_eval
    }

    /// Sends an event; false when the client is gone.
    pub(crate) fn send(&self, event: Event) -> bool {
        // The worker only schedules a sequence whose channel has room for three events
        // (log-probabilities, text and done), so `Full` cannot happen here; treat it like a
        // gone client rather than block.
        self.events.try_send(event).is_ok()
    }

    /// Handles a sampled token: detokenize, check stop strings and limits, send text.
    pub(crate) fn on_token(&mut self, token: Token, piece: &[u8], is_eog: bool, n_ctx_left: usize) -> Next {
        let now = Instant::now();
        self.first_token.get_or_insert(now);
        self.last_token = Some(now);
        if is_eog && !self.ignore_eos {
            return self.flush_and(FinishReason::Stop);
        }
        self.generated += 1;
        let text = self.decoder.push(piece);
        let out = self.stop.push(&text);
        if !self.send_text(out.emit) {
            return Next::Cancelled;
        }
        if out.stopped {
            return Next::Finished(FinishReason::Stop);
        }
        if self.generated >= self.max_tokens || n_ctx_left == 0 {
            return self.flush_and(FinishReason::Length);
        }
        self.pending = Some(token);
        Next::Continue
    }

    /// Releases held-back text, then finishes.
    fn flush_and(&mut self, reason: FinishReason) -> Next {
        let mut tail = self.decoder.finish();
        let out = self.stop.push(&tail);
        tail = out.emit;
        if out.stopped {
            if !self.send_text(tail) {
                return Next::Cancelled;
            }
            return Next::Finished(FinishReason::Stop);
        }
        tail.push_str(&self.stop.finish());
        if !self.send_text(tail) {
            return Next::Cancelled;
        }
        Next::Finished(reason)
    }

    /// Sends text, preceded by the log-probabilities it completes; false when the client is
    /// gone. Tokens whose text is held back (a stop string in progress, part of a character)
    /// are reported at once by a text event without text, so a request that is cancelled or
    /// fails before the text goes out is still charged for them.
    fn send_text(&mut self, text: String) -> bool {
        if text.is_empty() {
            let tokens = self.generated - self.reported;
            self.reported = self.generated;
            return tokens == 0 || self.send(Event::Text { text, tokens });
        }
        if let Some(lp) = self.logprobs.as_mut() {
            let done = lp.release(&text);
            if !done.is_empty() && !self.send(Event::Logprobs(done)) {
                return false;
            }
        }
        let tokens = self.generated - self.reported;
        self.reported = self.generated;
        self.send(Event::Text { text, tokens })
    }

    /// Counts and timings so far.
    pub(crate) fn completion(&self) -> Completion {
        let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1000.0;
        let first = self.first_token.unwrap_or(self.admitted);
        Completion {
            prompt_tokens: self.prompt.len() as u32,
            cached_tokens: self.cached,
            completion_tokens: self.generated,
            prompt_ms: ms(self.admitted, first),
            generation_ms: self.last_token.map_or(0.0, |l| ms(first, l)),
            stop_sequence: self.stop.matched().map(str::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(t: &str) -> TokenLogprob {
        TokenLogprob { token: t.into(), bytes: t.as_bytes().to_vec(), logprob: -1.0, top: Vec::new() }
    }

    fn sequence(stop: &str) -> (Sequence, mpsc::Receiver<Event>) {
        let (events, rx) = mpsc::channel(8);
        let seq = Sequence {
            slot: 0,
            prompt: vec![1],
            n_eval: 1,
            pending: None,
            max_tokens: 100,
            reserved: 101,
            ignore_eos: false,
            generated: 0,
            reported: 0,
            cached: 0,
            decoder: Utf8Decoder::default(),
            stop: StopMatcher::new(vec![stop.to_string()]),
            events,
            admitted: Instant::now(),
            first_token: None,
            last_token: None,
            logprobs: None,
        };
        (seq, rx)
    }

    #[test]
    fn tokens_whose_text_is_held_back_are_reported_at_once() {
        let (mut seq, mut rx) = sequence("STOP");
        // "ST" may begin the stop string and "\xE2\x82" is two thirds of "€": neither goes out yet.
        for piece in [&b"Hel"[..], b" ST", b"\xE2\x82"] {
            assert_eq!(seq.on_token(5, piece, false, 1000), Next::Continue);
        }
        let mut reported = 0;
        while let Ok(event) = rx.try_recv() {
            if let Event::Text { tokens, .. } = event {
                reported += tokens;
            }
        }
        assert_eq!(reported, 3, "every sampled token is counted before its text is sent");
        assert_eq!(seq.on_token(5, b"\xAC", false, 1000), Next::Continue);
        match rx.try_recv() {
            Ok(Event::Text { text, tokens }) => assert_eq!((text.as_str(), tokens), ("ST€", 1)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reports_go_out_with_the_text_that_completes_them() {
        let mut l = Logprobs::new(0);
        for t in ["Hel", "lo", " ST"] {
            l.hold(lp(t));
        }
        // A stop matcher held "lo" back: only "Hel" is complete.
        let first: Vec<String> = l.release("Hel").into_iter().map(|t| t.token).collect();
        assert_eq!(first, ["Hel"]);
        assert!(l.release("l").is_empty(), "half of a token sends nothing yet");
        let second: Vec<String> = l.release("o").into_iter().map(|t| t.token).collect();
        assert_eq!(second, ["lo"]);
        // " ST" began a stop string and is never sent: its report stays behind.
        assert!(l.release("").is_empty());
    }
}
