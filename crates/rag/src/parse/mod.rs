//! Document parsers: plain text, Markdown, HTML, PDF (text layer, pages kept) and DOCX, into
//! blocks (paragraphs, list items, headings) that remember their section heading, page and
//! character offset. Bad input is an error, never a panic: wrong or unknown type, corrupt file,
//! a zip bomb, no text.

mod docx;
mod html;
mod markdown;
mod pdf;

use thiserror::Error;

/// A block of text in reading order.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Its text (no surrounding whitespace).
    pub text: String,
    /// The heading of the section it is in.
    pub section: Option<String>,
    /// 1-based page (PDF).
    pub page: Option<u32>,
    /// Character offset in the document's text (blocks joined by a blank line).
    pub start: usize,
}

/// A parsed document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedDocument {
    /// Title, when the format has one (HTML `<title>`, the first Markdown heading, DOCX title).
    pub title: Option<String>,
    /// Blocks in reading order.
    pub blocks: Vec<Block>,
}

impl ParsedDocument {
    /// The whole text (blocks joined by a blank line), as offsets count it.
    pub fn text(&self) -> String {
        self.blocks.iter().map(|b| b.text.as_str()).collect::<Vec<_>>().join("\n\n")
    }
}

/// Why a document was refused.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ParseError {
    /// Not a format Hearth reads.
    #[error("unsupported document type `{0}`; send PDF, DOCX, Markdown, HTML or plain text")]
    Unsupported(String),
    /// The file is damaged or not what its name says.
    #[error("the {kind} file could not be read: {reason}")]
    Corrupt {
        /// The format.
        kind: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// Its content would expand beyond the limit (a zip bomb, or simply too big).
    #[error("the document expands to more than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The files of one upload hold more blocks than allowed.
    #[error("the upload holds more than {limit} blocks (paragraphs, list items, headings) in all")]
    TooManyBlocks {
        /// The limit.
        limit: usize,
    },
    /// Its structure nests deeper than the parser follows.
    #[error("the document nests deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// No text could be extracted (e.g. a scanned PDF without a text layer).
    #[error("the document has no text")]
    Empty,
}

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Most bytes a document may expand to (decompressed archive members, extracted text).
    pub max_expanded: u64,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self { max_expanded: 64 << 20 }
    }
}

/// The formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Plain text.
    Text,
    /// Markdown.
    Markdown,
    /// HTML.
    Html,
    /// PDF.
    Pdf,
    /// Word (Office Open XML).
    Docx,
}

/// The format of a file, from its first bytes, name and declared content type.
///
/// # Errors
/// [`ParseError::Unsupported`] for anything else.
pub fn detect(bytes: &[u8], filename: &str, content_type: Option<&str>) -> Result<Kind, ParseError> {
    let ext = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let ctype = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if bytes.starts_with(b"%PDF-") {
        return Ok(Kind::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return if ext == "docx" || ctype.contains("wordprocessingml") {
            Ok(Kind::Docx)
        } else {
            Err(ParseError::Unsupported(format!("zip archive ({filename})")))
        };
    }
    match (ext.as_str(), ctype.as_str()) {
        ("pdf", _) | (_, "application/pdf") => {
            Err(ParseError::Corrupt { kind: "PDF", reason: "no %PDF header".into() })
        }
        ("docx", _) => Err(ParseError::Corrupt { kind: "DOCX", reason: "not a zip archive".into() }),
        ("md" | "markdown", _) | (_, "text/markdown") => Ok(Kind::Markdown),
        ("html" | "htm", _) | (_, "text/html") => Ok(Kind::Html),
        ("txt" | "text" | "csv" | "log" | "", _) | (_, "text/plain") => Ok(Kind::Text),
        (e, c) => Err(ParseError::Unsupported(if c.is_empty() || c == "application/octet-stream" {
            e.to_string()
        } else {
            c.to_string()
        })),
    }
}

/// Parses a document.
///
/// # Errors
/// See [`ParseError`].
pub fn parse(
    bytes: &[u8],
    filename: &str,
    content_type: Option<&str>,
    limits: ParseLimits,
) -> Result<ParsedDocument, ParseError> {
    let doc = match detect(bytes, filename, content_type)? {
        Kind::Text => text(utf8(bytes, "text")?),
        Kind::Markdown => markdown::parse(utf8(bytes, "Markdown")?),
        Kind::Html => html::parse(utf8(bytes, "HTML")?),
        Kind::Pdf => pdf::parse(bytes, limits)?,
        Kind::Docx => docx::parse(bytes, limits)?,
    };
    if doc.blocks.is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(doc)
}

fn utf8<'a>(bytes: &'a [u8], kind: &'static str) -> Result<&'a str, ParseError> {
    let s = std::str::from_utf8(bytes).map_err(|e| ParseError::Corrupt { kind, reason: format!("not UTF-8 ({e})") })?;
    if s.contains('\0') {
        return Err(ParseError::Corrupt { kind, reason: "binary content".into() });
    }
    Ok(s.strip_prefix('\u{feff}').unwrap_or(s))
}

/// Plain text: paragraphs are separated by blank lines.
fn text(s: &str) -> ParsedDocument {
    let mut b = Builder::default();
    for para in s.split("\n\n") {
        b.push(para, None, None);
    }
    b.finish(None)
}

/// Longest section heading kept with a block, in characters: a heading is repeated with every
/// block of its section (and every chunk stored), so a huge one is cut, and cleaned once.
pub const MAX_SECTION_CHARS: usize = 200;

/// Appends blocks and keeps their offsets.
#[derive(Default)]
pub(crate) struct Builder {
    blocks: Vec<Block>,
    offset: usize,
    /// The last section heading seen (its address and length) and its cleaned, cut form, so a
    /// heading shared by many blocks is cleaned once.
    section: Option<((usize, usize), String)>,
}

impl Builder {
    /// Adds a block (whitespace and control characters such as NUL collapsed to one space;
    /// empty blocks are dropped).
    pub(crate) fn push(&mut self, text: &str, section: Option<&str>, page: Option<u32>) {
        let text = clean(text);
        if text.is_empty() {
            return;
        }
        let section = section.map(|s| self.section_of(s));
        if !self.blocks.is_empty() {
            self.offset += 2;
        }
        let len = text.chars().count();
        self.blocks.push(Block { text, section, page, start: self.offset });
        self.offset += len;
    }

    fn section_of(&mut self, raw: &str) -> String {
        let key = (raw.as_ptr() as usize, raw.len());
        match &self.section {
            Some((k, cleaned)) if *k == key => cleaned.clone(),
            _ => {
                let cleaned = cut(clean(raw));
                self.section = Some((key, cleaned.clone()));
                cleaned
            }
        }
    }

    pub(crate) fn finish(self, title: Option<String>) -> ParsedDocument {
        let title = title.map(|t| cut(clean(&t))).filter(|t| !t.is_empty());
        ParsedDocument { title, blocks: self.blocks }
    }
}

/// `s` cut to [`MAX_SECTION_CHARS`] characters (marked with an ellipsis when cut).
fn cut(mut s: String) -> String {
    if let Some((at, _)) = s.char_indices().nth(MAX_SECTION_CHARS) {
        s.truncate(at);
        s.push('…');
    }
    s
}

/// Words of `text` joined by single spaces; control characters (NUL included) separate words.
fn clean(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every block carried its own cleaned copy of the current heading: a 1 MB heading over
    // 300k short blocks meant hundreds of GB of work and memory (issue 28).
    #[test]
    fn a_huge_heading_is_cut_and_cleaned_once_for_all_its_blocks() {
        let md = format!("# {}\n\n{}", "H".repeat(1 << 20), "a\n\n".repeat(300_000));
        let d = parse(md.as_bytes(), "h.md", None, ParseLimits::default()).unwrap();
        assert_eq!(d.blocks.len(), 300_001);
        assert!(d
            .blocks
            .iter()
            .all(|b| b.section.as_ref().is_some_and(|s| s.chars().count() == MAX_SECTION_CHARS + 1)));
        assert_eq!(d.title.map(|t| t.chars().count()), Some(MAX_SECTION_CHARS + 1));
    }

    #[test]
    fn types_by_magic_name_and_content_type() {
        assert_eq!(detect(b"%PDF-1.7", "x.bin", None), Ok(Kind::Pdf));
        assert_eq!(detect(b"# t", "notes.md", None), Ok(Kind::Markdown));
        assert_eq!(detect(b"<p>", "x", Some("text/html; charset=utf-8")), Ok(Kind::Html));
        assert_eq!(detect(b"hi", "a.txt", None), Ok(Kind::Text));
        assert!(matches!(detect(b"PK\x03\x04", "a.zip", None), Err(ParseError::Unsupported(_))));
        assert!(matches!(detect(b"hello", "a.pdf", None), Err(ParseError::Corrupt { .. })));
        assert!(matches!(detect(b"x", "a.exe", None), Err(ParseError::Unsupported(_))));
    }

    #[test]
    fn text_paragraphs_and_offsets() {
        let d = parse(b"First  para\nline two.\n\n\n\nSecond.", "a.txt", None, ParseLimits::default()).unwrap();
        assert_eq!(d.blocks.len(), 2);
        assert_eq!(d.blocks[0].text, "First para line two.");
        let text = d.text();
        let b = &d.blocks[1];
        assert_eq!(text.chars().skip(b.start).take(b.text.chars().count()).collect::<String>(), b.text);
        assert_eq!(parse(b"  \n\n ", "a.txt", None, ParseLimits::default()), Err(ParseError::Empty));
        // Text files with NUL are refused as binary; extracted text (a PDF's) is cleaned.
        let mut b = Builder::default();
        b.push("A\0B\x01 c", Some("Head\0ing"), None);
        let nul = b.finish(Some("\0T".into()));
        assert_eq!((nul.blocks[0].text.as_str(), nul.blocks[0].section.as_deref()), ("A B c", Some("Head ing")));
        assert_eq!(nul.title.as_deref(), Some("T"));
        assert!(matches!(
            parse(&[0xff, 0xfe, 0], "a.txt", None, ParseLimits::default()),
            Err(ParseError::Corrupt { .. })
        ));
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn pdf_pages_are_kept() {
        let bytes = fixtures::pdf(&["The aurora code is\nQX-7741.", "Second page text."]);
        let d = parse(&bytes, "f.pdf", None, ParseLimits::default()).unwrap();
        assert!(d.blocks.iter().any(|b| b.page == Some(1) && b.text.contains("QX-7741")), "{d:?}");
        assert!(d.blocks.iter().any(|b| b.page == Some(2) && b.text.contains("Second page")));
        let broken = &bytes[..bytes.len() / 2];
        assert!(matches!(parse(broken, "f.pdf", None, ParseLimits::default()), Err(ParseError::Corrupt { .. })));
    }

    #[test]
    fn docx_paragraphs_headings_and_title() {
        let bytes = fixtures::docx(
            "Field notes",
            &[
                ("Heading1", "Tides"),
                ("", "Low tide at 04:12 & high at 10:31."),
                ("Heading2", "Birds"),
                ("", "Terns nest here."),
            ],
        );
        let d = parse(&bytes, "n.docx", None, ParseLimits::default()).unwrap();
        assert_eq!(d.title.as_deref(), Some("Field notes"));
        let t: Vec<(&str, Option<&str>)> = d.blocks.iter().map(|b| (b.text.as_str(), b.section.as_deref())).collect();
        assert_eq!(
            t,
            [
                ("Tides", Some("Tides")),
                ("Low tide at 04:12 & high at 10:31.", Some("Tides")),
                ("Birds", Some("Birds")),
                ("Terns nest here.", Some("Birds"))
            ]
        );
    }

    #[test]
    fn zip_bombs_and_non_documents_are_refused() {
        let huge = vec![b'a'; 3 << 20];
        let bomb = fixtures::zip_of(&[("word/document.xml", &huge)]);
        assert!(bomb.len() < 100_000, "highly compressible");
        let small = ParseLimits { max_expanded: 1 << 20 };
        assert_eq!(parse(&bomb, "b.docx", None, small), Err(ParseError::TooLarge { limit: 1 << 20 }));
        let other = fixtures::zip_of(&[("x.txt", b"hi")]);
        assert!(matches!(parse(&other, "b.docx", None, small), Err(ParseError::Corrupt { .. })));
        assert!(matches!(parse(b"PK\x03\x04garbage", "b.docx", None, small), Err(ParseError::Corrupt { .. })));
    }
}
