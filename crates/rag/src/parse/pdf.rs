//! PDF: the text layer of each page (1-based page numbers kept), paragraphs split at blank
//! lines. A PDF without a text layer (scanned images) has no text and is refused upstream.

use super::{Builder, ParseError, ParseLimits, ParsedDocument};

/// Deepest nesting of arrays and dictionaries accepted in a PDF's objects: lopdf's parser
/// recurses once per level.
pub(crate) const MAX_PDF_NESTING: usize = 256;

pub(super) fn parse(bytes: &[u8], limits: ParseLimits) -> Result<ParsedDocument, ParseError> {
    let corrupt = |reason: String| ParseError::Corrupt { kind: "PDF", reason };
    if nesting(bytes) > MAX_PDF_NESTING {
        return Err(ParseError::TooDeep { limit: MAX_PDF_NESTING });
    }
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

/// How deep arrays (`[`) and dictionaries (`<<`) nest in the file's objects, skipping
/// literal strings and stream data, without parsing it.
fn nesting(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'[' => depth += 1,
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                depth += 1;
                i += 1;
            }
            b']' => depth = depth.saturating_sub(1),
            b'>' if bytes.get(i + 1) == Some(&b'>') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'(' => i = skip_string(bytes, i),
            b'%' => i = skip_line(bytes, i),
            b's' if bytes[i..].starts_with(b"stream") && !bytes[..i].ends_with(b"end") => {
                i = find(bytes, i, b"endstream").unwrap_or(bytes.len());
            }
            _ => {}
        }
        deepest = deepest.max(depth);
        i += 1;
    }
    deepest
}

/// The index of the `)` closing the literal string opening at `at` (strings nest by balanced
/// parentheses; `\` escapes one byte).
fn skip_string(bytes: &[u8], at: usize) -> usize {
    let (mut open, mut i) = (0usize, at);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'(' => open += 1,
            b')' => {
                open -= 1;
                if open == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

fn skip_line(bytes: &[u8], at: usize) -> usize {
    bytes[at..].iter().position(|&b| b == b'\n' || b == b'\r').map_or(bytes.len(), |p| at + p)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes[from..].windows(needle.len()).position(|w| w == needle).map(|p| from + p + needle.len() - 1)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_arrays_and_dictionaries_but_not_strings_or_streams() {
        assert_eq!(nesting(b"<< /A [1 [2] ] /B << /C 3 >> >>"), 3);
        assert_eq!(nesting(b"(((( [[[[ )))) [x]"), 1, "inside a literal string");
        assert_eq!(nesting(b"<< /Length 8 >> stream\n[[[[[[[[\nendstream [1]"), 1, "inside stream data");
        assert_eq!(nesting(b"% [[[[ comment\n[1]"), 1);
    }

    // lopdf recurses once per level of nesting: a file of nested arrays overflowed the stack.
    #[test]
    fn a_pdf_nested_deeper_than_the_limit_is_refused_before_parsing() {
        let deep = format!(
            "%PDF-1.5\n1 0 obj << /Type /Catalog /X {}1{} >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let got = parse(deep.as_bytes(), ParseLimits::default());
        assert_eq!(got, Err(ParseError::TooDeep { limit: MAX_PDF_NESTING }));
        let fine = crate::fixtures::pdf(&["hello"]);
        assert!(nesting(&fine) < 8);
        assert!(parse(&fine, ParseLimits::default()).is_ok());
    }
}
