//! Incremental UTF-8 decoding of token pieces.
//!
//! A token's bytes may end in the middle of a multi-byte character; the rest arrives with the
//! next token. [`Utf8Decoder`] holds such a tail back until it is complete, and replaces bytes
//! that can never become valid UTF-8 with U+FFFD.

/// Per-sequence incremental decoder.
#[derive(Debug, Default)]
pub struct Utf8Decoder {
    /// Bytes of an incomplete trailing character, waiting for the next piece.
    pending: Vec<u8>,
}

impl Utf8Decoder {
    /// Adds bytes and returns the text that is complete so far.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // from_utf8 said the first `valid` bytes are UTF-8, so this cannot fail.
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: keep it for the next push.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Bytes that can never be valid: replace them and go on.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Ends the stream: an incomplete tail becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            return String::new();
        }
        self.pending.clear();
        char::REPLACEMENT_CHARACTER.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multibyte_char_split_across_pieces_is_held_back() {
        let mut d = Utf8Decoder::default();
        let euro = "€".as_bytes(); // 3 bytes
        assert_eq!(d.push(&euro[..1]), "");
        assert_eq!(d.push(&euro[1..2]), "");
        assert_eq!(d.push(&[euro[2], b'x']), "€x");
        assert_eq!(d.finish(), "");
    }

    #[test]
    fn emoji_split_in_every_position() {
        let s = "a😀b";
        for cut in 0..=s.len() {
            let mut d = Utf8Decoder::default();
            let mut out = d.push(&s.as_bytes()[..cut]);
            out += &d.push(&s.as_bytes()[cut..]);
            assert_eq!(out, s, "cut at {cut}");
        }
    }

    #[test]
    fn invalid_bytes_become_replacement_chars() {
        let mut d = Utf8Decoder::default();
        assert_eq!(d.push(&[b'a', 0xff, b'b']), "a\u{fffd}b");
    }

    #[test]
    fn unfinished_tail_at_end_is_replaced() {
        let mut d = Utf8Decoder::default();
        assert_eq!(d.push(&[0xe2, 0x82]), "");
        assert_eq!(d.finish(), "\u{fffd}");
    }
}
