//! Markdown: headings start sections; paragraphs, list items, quotes, code blocks and table
//! rows are blocks.

use super::{Builder, ParsedDocument};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

pub(super) fn parse(s: &str) -> ParsedDocument {
    let mut b = Builder::default();
    let mut title: Option<String> = None;
    let mut section: Option<String> = None;
    let mut heading: Option<String> = None;
    let mut text = String::new();
    for ev in Parser::new_ext(s, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
        match ev {
            Event::Start(Tag::Heading { .. }) => {
                b.push(&text, section.as_deref(), None);
                text.clear();
                heading = Some(String::new());
            }
            Event::End(TagEnd::Heading(_)) => {
                let h = heading.take().unwrap_or_default().trim().to_string();
                title.get_or_insert_with(|| h.clone());
                section = Some(h.clone()).filter(|h| !h.is_empty());
                // The heading is a block of its own section, so it is searchable.
                b.push(&h, section.as_deref(), None);
            }
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => match heading.as_mut() {
                Some(h) => h.push_str(&t),
                None => text.push_str(&t),
            },
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            Event::End(TagEnd::Paragraph | TagEnd::Item | TagEnd::CodeBlock | TagEnd::TableRow | TagEnd::TableHead) => {
                b.push(&text, section.as_deref(), None);
                text.clear();
            }
            Event::End(TagEnd::TableCell) => text.push_str(" | "),
            _ => {}
        }
    }
    b.push(&text, section.as_deref(), None);
    b.finish(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a thread with a small stack, as a check that nothing recursed per level.
    fn small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new().stack_size(256 << 10).spawn(f).unwrap().join().unwrap()
    }

    // Nesting was feared to recurse once per level in the parser (issue 28).
    #[test]
    fn deeply_nested_quotes_and_lists_parse_without_recursion() {
        let quotes = small_stack(|| parse(&format!("{} deep", ">".repeat(50_000))));
        assert!(quotes.blocks.iter().any(|b| b.text.contains("deep")));
        let lists = small_stack(|| parse(&format!("{}deep", "- ".repeat(50_000))));
        assert!(lists.blocks.iter().any(|b| b.text.contains("deep")));
    }

    #[test]
    fn headings_make_sections() {
        let d = parse("# Guide\n\nIntro text.\n\n## Setup\n\n- step one\n- step two\n\nDone `now`.\n");
        assert_eq!(d.title.as_deref(), Some("Guide"));
        let t: Vec<(&str, Option<&str>)> = d.blocks.iter().map(|b| (b.text.as_str(), b.section.as_deref())).collect();
        assert_eq!(
            t,
            [
                ("Guide", Some("Guide")),
                ("Intro text.", Some("Guide")),
                ("Setup", Some("Setup")),
                ("step one", Some("Setup")),
                ("step two", Some("Setup")),
                ("Done now.", Some("Setup")),
            ]
        );
    }
}
