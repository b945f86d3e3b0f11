//! DOCX: the paragraphs of `word/document.xml` (heading styles start sections), the title from
//! `docProps/core.xml`. Archive members are read with a size cap, so a zip bomb is refused.

use super::{Builder, ParseError, ParseLimits, ParsedDocument};
use quick_xml::events::Event;
use std::io::Read;

pub(super) fn parse(bytes: &[u8], limits: ParseLimits) -> Result<ParsedDocument, ParseError> {
    let corrupt = |reason: String| ParseError::Corrupt { kind: "DOCX", reason };
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| corrupt(e.to_string()))?;
    let body = member(&mut zip, "word/document.xml", limits)?.ok_or_else(|| corrupt("no word/document.xml".into()))?;
    let title = member(&mut zip, "docProps/core.xml", limits)?.and_then(|x| core_title(&x));
    let mut b = Builder::default();
    let mut section: Option<String> = None;
    for (style, text) in paragraphs(&body).map_err(corrupt)? {
        if style.to_ascii_lowercase().starts_with("heading") || style.eq_ignore_ascii_case("title") {
            let h = text.trim().to_string();
            section = Some(h.clone()).filter(|h| !h.is_empty());
        }
        b.push(&text, section.as_deref(), None);
    }
    Ok(b.finish(title))
}

/// A member's bytes as UTF-8, read at most `max_expanded` bytes (refused beyond).
fn member<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    limits: ParseLimits,
) -> Result<Option<String>, ParseError> {
    let corrupt = |reason: String| ParseError::Corrupt { kind: "DOCX", reason };
    let file = match zip.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(corrupt(e.to_string())),
    };
    let mut out = Vec::new();
    // Read one byte past the limit to tell "exactly at" from "over"; the declared size is not
    // trusted.
    file.take(limits.max_expanded + 1).read_to_end(&mut out).map_err(|e| corrupt(e.to_string()))?;
    if out.len() as u64 > limits.max_expanded {
        return Err(ParseError::TooLarge { limit: limits.max_expanded });
    }
    String::from_utf8(out).map(Some).map_err(|e| corrupt(e.to_string()))
}

/// (style id, text) of every `<w:p>`; tabs and breaks become spaces.
fn paragraphs(xml: &str) -> Result<Vec<(String, String)>, String> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let (mut style, mut text, mut in_text) = (String::new(), String::new(), false);
    loop {
        match r.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) | Event::Empty(e) => match e.local_name().into_inner() {
                "p" => {
                    style.clear();
                    text.clear();
                }
                "pStyle" => {
                    for a in e.attributes().flatten() {
                        if a.key.local_name().into_inner() == "val" {
                            style = a.value.to_string();
                        }
                    }
                }
                "t" => in_text = true,
                "tab" | "br" | "cr" => text.push(' '),
                _ => {}
            },
            Event::Text(t) if in_text => {
                text.push_str(&t.xml_content(quick_xml::XmlVersion::Implicit1_0));
            }
            Event::GeneralRef(g) if in_text => {
                let name: &str = &g;
                text.push_str(match name {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => "",
                });
            }
            Event::End(e) => match e.local_name().into_inner() {
                "t" => in_text = false,
                "p" => out.push((std::mem::take(&mut style), std::mem::take(&mut text))),
                _ => {}
            },
            Event::Eof => return Ok(out),
            _ => {}
        }
    }
}

fn core_title(xml: &str) -> Option<String> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut in_title = false;
    loop {
        match r.read_event().ok()? {
            Event::Start(e) if e.local_name().into_inner() == "title" => in_title = true,
            Event::Text(t) if in_title => return Some(t.xml_content(quick_xml::XmlVersion::Implicit1_0).into_owned()),
            Event::Eof => return None,
            _ => {}
        }
    }
}
