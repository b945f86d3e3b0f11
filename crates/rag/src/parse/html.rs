//! HTML: the `<title>`, headings as sections, and the text of block elements; scripts, styles
//! and navigation are left out.

use super::{Builder, ParsedDocument};
use scraper::{ElementRef, Html, Node, Selector};

const BLOCKS: &[&str] = &["p", "li", "td", "th", "pre", "blockquote", "dd", "dt", "figcaption", "caption"];
const HEADINGS: &[&str] = &["h1", "h2", "h3", "h4", "h5", "h6"];
const SKIP: &[&str] = &["script", "style", "noscript", "template", "nav", "head", "svg"];

pub(super) fn parse(s: &str) -> ParsedDocument {
    let html = Html::parse_document(s);
    let title =
        Selector::parse("title").ok().and_then(|sel| html.select(&sel).next()).map(|t| t.text().collect::<String>());
    let mut b = Builder::default();
    let mut section: Option<String> = None;
    walk(html.root_element(), &mut b, &mut section);
    b.finish(title)
}

/// Depth-first, with a stack of its own (a document may nest elements tens of thousands deep):
/// a heading or block element is one block (its whole text); other elements are walked into,
/// and loose text directly inside them becomes blocks too.
fn walk(root: ElementRef<'_>, b: &mut Builder, section: &mut Option<String>) {
    let mut stack = vec![root.children()];
    while let Some(children) = stack.last_mut() {
        let Some(child) = children.next() else {
            stack.pop();
            continue;
        };
        match child.value() {
            Node::Element(e) => {
                let Some(child_el) = ElementRef::wrap(child) else { continue };
                let name = e.name();
                if SKIP.contains(&name) {
                    continue;
                }
                let text = || child_el.text().collect::<Vec<_>>().join(" ");
                if HEADINGS.contains(&name) {
                    let h = text().split_whitespace().collect::<Vec<_>>().join(" ");
                    *section = Some(h.clone()).filter(|h| !h.is_empty());
                    b.push(&h, section.as_deref(), None);
                } else if BLOCKS.contains(&name) {
                    b.push(&text(), section.as_deref(), None);
                } else {
                    stack.push(child_el.children());
                }
            }
            Node::Text(t) => b.push(t, section.as_deref(), None),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The walker recursed once per level: 60k nested spans overflowed the stack and ended the
    // server (issue 28).
    #[test]
    fn deeply_nested_elements_are_walked_without_recursion() {
        let html = format!("<body>{}deep text{}</body>", "<span>".repeat(60_000), "</span>".repeat(60_000));
        let d = std::thread::Builder::new().stack_size(256 << 10).spawn(move || parse(&html)).unwrap().join().unwrap();
        assert_eq!(d.blocks[0].text, "deep text");
    }

    #[test]
    fn blocks_sections_and_no_scripts() {
        let d = parse(
            "<html><head><title>Manual</title><script>var x=1;</script></head><body><nav>Home</nav>\
             <h1>Start</h1><p>Hello <b>bold</b> world.</p><div>Loose text<ul><li>one</li></ul></div>\
             <h2>Next</h2><table><tr><td>cell</td></tr></table></body></html>",
        );
        assert_eq!(d.title.as_deref(), Some("Manual"));
        let t: Vec<(&str, Option<&str>)> = d.blocks.iter().map(|b| (b.text.as_str(), b.section.as_deref())).collect();
        assert_eq!(
            t,
            [
                ("Start", Some("Start")),
                ("Hello bold world.", Some("Start")),
                ("Loose text", Some("Start")),
                ("one", Some("Start")),
                ("Next", Some("Next")),
                ("cell", Some("Next")),
            ]
        );
    }
}
