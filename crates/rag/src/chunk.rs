//! Chunking: a document's blocks (paragraphs, headings, list items) become chunks of at most
//! `max_tokens` tokens of the embedding model, with `overlap` tokens carried over, never
//! splitting a block unless it is longer than a chunk by itself, and never joining blocks of
//! different sections or pages.

use crate::parse::{Block, ParsedDocument};

/// How to cut.
#[derive(Debug, Clone, Copy)]
pub struct ChunkSpec {
    /// Most tokens in a chunk.
    pub max_tokens: usize,
    /// Tokens of the previous chunk repeated at the start of the next (same section only).
    pub overlap: usize,
}

impl Default for ChunkSpec {
    fn default() -> Self {
        Self { max_tokens: 200, overlap: 32 }
    }
}

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Position in the document (0-based).
    pub ord: usize,
    /// Its text.
    pub text: String,
    /// Page (PDF), 1-based.
    pub page: Option<u32>,
    /// Heading of the section it is in.
    pub section: Option<String>,
    /// Character offsets of the chunk in the document's extracted text.
    pub start: usize,
    /// End offset (exclusive).
    pub end: usize,
}

/// A piece of text with its place.
struct Piece<'a> {
    text: &'a str,
    start: usize,
    tokens: usize,
}

/// Cuts `doc` into chunks; `count` gives the number of tokens of a text.
pub fn chunk(doc: &ParsedDocument, spec: ChunkSpec, count: &dyn Fn(&str) -> usize) -> Vec<Chunk> {
    let max = spec.max_tokens.max(1);
    let overlap = spec.overlap.min(max / 2);
    let full = doc.text();
    // Byte index of every character (and the end), to cut chunks out of the text by offsets.
    let idx: Vec<usize> = full.char_indices().map(|(b, _)| b).chain(std::iter::once(full.len())).collect();
    let text_of =
        |start: usize, end: usize| full[idx[start.min(idx.len() - 1)]..idx[end.min(idx.len() - 1)]].to_string();
    let mut out: Vec<Chunk> = Vec::new();
    let mut group: Vec<&Block> = Vec::new();
    for block in &doc.blocks {
        let same = group.last().is_none_or(|b| b.page == block.page && b.section == block.section);
        if !same {
            emit(&group, max, overlap, count, &text_of, &mut out);
            group.clear();
        }
        group.push(block);
    }
    emit(&group, max, overlap, count, &text_of, &mut out);
    for (i, c) in out.iter_mut().enumerate() {
        c.ord = i;
    }
    out
}

/// Chunks of one section (blocks sharing page and heading).
fn emit(
    blocks: &[&Block],
    max: usize,
    overlap: usize,
    count: &dyn Fn(&str) -> usize,
    text_of: &dyn Fn(usize, usize) -> String,
    out: &mut Vec<Chunk>,
) {
    let Some(first) = blocks.first() else { return };
    let mut pieces: Vec<Piece> = Vec::new();
    for b in blocks {
        for p in split_long(&b.text, b.start, max, count) {
            pieces.push(p);
        }
    }
    let mut i = 0;
    while i < pieces.len() {
        let mut tokens = 0;
        let mut j = i;
        while j < pieces.len() && (j == i || tokens + pieces[j].tokens <= max) {
            tokens += pieces[j].tokens;
            j += 1;
        }
        let end = pieces[j - 1].start + pieces[j - 1].text.chars().count();
        out.push(Chunk {
            ord: 0,
            text: text_of(pieces[i].start, end),
            page: first.page,
            section: first.section.clone(),
            start: pieces[i].start,
            end,
        });
        if j >= pieces.len() {
            break;
        }
        // Step back over whole pieces worth at most `overlap` tokens (never to where we began).
        let mut back = j;
        let mut carried = 0;
        while back > i + 1 && carried + pieces[back - 1].tokens <= overlap {
            back -= 1;
            carried += pieces[back].tokens;
        }
        i = back;
    }
}

/// A block longer than `max` tokens cut at sentence ends (else word ends) into pieces that fit.
fn split_long<'a>(text: &'a str, start: usize, max: usize, count: &dyn Fn(&str) -> usize) -> Vec<Piece<'a>> {
    let tokens = count(text);
    if tokens <= max {
        return vec![Piece { text, start, tokens }];
    }
    let mut out = Vec::new();
    let mut rest = text;
    let mut offset = start;
    while !rest.is_empty() {
        let cut = fit_prefix(rest, max, count);
        let (head, tail) = rest.split_at(cut);
        let trimmed = tail.trim_start();
        let skipped = tail.len() - trimmed.len();
        out.push(Piece { text: head.trim_end(), start: offset, tokens: count(head) });
        offset += head.chars().count() + tail[..skipped].chars().count();
        rest = trimmed;
    }
    out
}

/// The longest prefix (in bytes, at a sentence or word boundary when possible) within `max`.
fn fit_prefix(text: &str, max: usize, count: &dyn Fn(&str) -> usize) -> usize {
    let bounds: Vec<usize> = text
        .char_indices()
        .filter(|&(i, c)| c.is_whitespace() && i > 0)
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    // Binary search over word boundaries for the last that fits.
    let (mut lo, mut hi) = (0usize, bounds.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if count(&text[..bounds[mid]]) <= max {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let fits = lo.checked_sub(1).map(|k| bounds[k]);
    match fits {
        Some(end) => {
            // Prefer ending at a sentence within the last third of the fitting prefix.
            let head = &text[..end];
            let sentence = head.rfind(['.', '!', '?', '\n']).map(|p| p + 1).filter(|&p| p * 3 >= end * 2);
            sentence.unwrap_or(end)
        }
        // Not even one word fits: cut inside it by characters.
        None => text.char_indices().nth(max.max(1)).map_or(text.len(), |(i, _)| i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn doc(blocks: &[(&str, Option<&str>, Option<u32>)]) -> ParsedDocument {
        let mut start = 0;
        let blocks = blocks
            .iter()
            .map(|(t, s, p)| {
                let b = Block { text: t.to_string(), section: s.map(String::from), page: *p, start };
                start += t.chars().count() + 2;
                b
            })
            .collect();
        ParsedDocument { title: None, blocks }
    }

    #[test]
    fn paragraphs_are_kept_whole_and_sections_apart() {
        let d = doc(&[("a b c", Some("One"), None), ("d e", Some("One"), None), ("f g h i", Some("Two"), None)]);
        let c = chunk(&d, ChunkSpec { max_tokens: 8, overlap: 0 }, &words);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].text, "a b c\n\nd e");
        assert_eq!(c[0].section.as_deref(), Some("One"));
        assert_eq!((c[1].text.as_str(), c[1].ord), ("f g h i", 1));
    }

    #[test]
    fn long_blocks_split_at_sentences_with_offsets() {
        let text = "One two three. Four five six. Seven eight nine ten.";
        let d = doc(&[(text, None, Some(3))]);
        let c = chunk(&d, ChunkSpec { max_tokens: 4, overlap: 0 }, &words);
        assert_eq!(
            c.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
            ["One two three.", "Four five six.", "Seven eight nine ten."]
        );
        assert!(c.iter().all(|c| c.page == Some(3)));
        for ch in &c {
            let s: String = text.chars().skip(ch.start).take(ch.end - ch.start).collect();
            assert_eq!(s, ch.text, "offsets point at the chunk's text");
        }
    }

    #[test]
    fn overlap_repeats_trailing_paragraphs() {
        let d = doc(&[("a b", None, None), ("c d", None, None), ("e f", None, None), ("g h", None, None)]);
        let c = chunk(&d, ChunkSpec { max_tokens: 4, overlap: 2 }, &words);
        assert_eq!(c.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), ["a b\n\nc d", "c d\n\ne f", "e f\n\ng h"]);
    }

    #[test]
    fn a_giant_word_is_cut_by_characters() {
        let d = doc(&[(&"x".repeat(50), None, None)]);
        let c = chunk(&d, ChunkSpec { max_tokens: 8, overlap: 0 }, &|s: &str| s.len().div_ceil(4));
        assert!(c.len() >= 2 && c.iter().all(|c| c.text.len() <= 32));
        assert_eq!(c.iter().map(|c| c.text.len()).sum::<usize>(), 50);
    }
}
