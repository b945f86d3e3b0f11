//! Stop sequences over streamed text.
//!
//! Text is released only once it can no longer be the start of a stop string, so a stop string
//! split across tokens is never emitted, not even in part.

/// Per-sequence stop matcher.
#[derive(Debug, Default)]
pub struct StopMatcher {
    /// The stop strings (non-empty).
    stops: Vec<String>,
    /// Text received but not yet released, because it may begin a stop string.
    held: String,
    /// The stop string that ended generation.
    matched: Option<String>,
}

/// What [`StopMatcher::push`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct StopOutcome {
    /// Text safe to send to the client.
    pub emit: String,
    /// A stop string was found; generation must end.
    pub stopped: bool,
}

impl StopMatcher {
    /// A matcher for these stop strings (empty strings are ignored).
    pub fn new(stops: Vec<String>) -> Self {
        let stops = stops.into_iter().filter(|s| !s.is_empty()).collect();
        Self { stops, held: String::new(), matched: None }
    }

    /// Adds generated text; returns what may be released and whether a stop string matched.
    pub fn push(&mut self, text: &str) -> StopOutcome {
        self.held.push_str(text);
        if self.stops.is_empty() {
            return StopOutcome { emit: std::mem::take(&mut self.held), stopped: false };
        }
        if let Some((at, stop)) = self.first_match() {
            let emit = self.held[..at].to_string();
            self.held.clear();
            self.matched = Some(stop);
            return StopOutcome { emit, stopped: true };
        }
        let keep = self.partial_suffix_len();
        let cut = self.held.len() - keep;
        let emit = self.held[..cut].to_string();
        self.held.drain(..cut);
        StopOutcome { emit, stopped: false }
    }

    /// Releases held-back text at the end of generation (no stop string completed).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The stop string that ended generation, if one did.
    pub fn matched(&self) -> Option<&str> {
        self.matched.as_deref()
    }

    /// Byte offset of the earliest complete stop string in the held text, and that string.
    fn first_match(&self) -> Option<(usize, String)> {
        let found = self.stops.iter().filter_map(|s| self.held.find(s.as_str()).map(|at| (at, s))).min();
        found.map(|(at, s)| (at, s.clone()))
    }

    /// Length of the longest suffix of the held text that is a proper prefix of a stop string.
    fn partial_suffix_len(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            let max = stop.len().saturating_sub(1).min(self.held.len());
            for len in (best + 1..=max).rev() {
                let start = self.held.len() - len;
                if self.held.is_char_boundary(start) && stop.starts_with(&self.held[start..]) {
                    best = len;
                    break;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut m = StopMatcher::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for p in pieces {
            let o = m.push(p);
            out += &o.emit;
            if o.stopped {
                return (out, true);
            }
        }
        out += &m.finish();
        (out, false)
    }

    #[test]
    fn no_stops_passes_everything_through() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
    }

    #[test]
    fn stop_split_across_tokens_is_never_emitted() {
        assert_eq!(run(&["END"], &["hello E", "N", "D more"]), ("hello ".into(), true));
    }

    #[test]
    fn false_start_is_released() {
        assert_eq!(run(&["END"], &["E", "N", "x"]), ("ENx".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(run(&["b", "a"], &["xxab"]), ("xx".into(), true));
    }

    #[test]
    fn held_text_released_at_finish() {
        assert_eq!(run(&["world"], &["hello wor"]), ("hello wor".into(), false));
    }

    #[test]
    fn multibyte_text_near_stop_is_safe() {
        assert_eq!(run(&["€!"], &["a€", "b€", "!"]), ("a€b".into(), true));
    }

    #[test]
    fn empty_stop_strings_are_ignored() {
        assert_eq!(run(&[""], &["abc"]), ("abc".into(), false));
    }
}
