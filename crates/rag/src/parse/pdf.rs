//! PDF: the text layer of each page (1-based page numbers kept), paragraphs split at blank
//! lines. A PDF without a text layer (scanned images) has no text and is refused upstream.

use super::{Builder, ParseError, ParseLimits, ParsedDocument};

pub(super) fn parse(bytes: &[u8], limits: ParseLimits) -> Result<ParsedDocument, ParseError> {
    let corrupt = |reason: String| ParseError::Corrupt { kind: "PDF", reason };
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| corrupt(e.to_string()))?;
    if doc.is_encrypted() {
        return Err(corrupt("it is encrypted".into()));
    }
    let max = usize::try_from(limits.max_expanded).unwrap_or(usize::MAX);
    let mut b = Builder::default();
    let mut total = 0usize;
    for (number, _) in doc.get_pages() {
        let text = doc.extract_text_with_limit(&[number], max).map_err(|e| corrupt(format!("page {number}: {e}")))?;
        total += text.len();
        if total as u64 > limits.max_expanded {
            return Err(ParseError::TooLarge { limit: limits.max_expanded });
        }
        for para in split_paragraphs(&text) {
            b.push(&para, None, Some(number));
        }
    }
    let title = doc
        .trailer
        .get(b"Info")
        .and_then(|o| o.as_reference())
        .and_then(|r| doc.get_dictionary(r))
        .and_then(|d| d.get(b"Title"))
        .ok()
        .and_then(|t| t.as_str().ok())
        .map(|t| String::from_utf8_lossy(t).into_owned());
    Ok(b.finish(title))
}

/// Paragraphs of a page's text: blank lines separate them; lines within one are joined.
fn split_paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.trim().is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        cur.push_str(line.trim());
        cur.push(' ');
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}
