//! The grammar of a family's tool calls, composed from each tool's argument grammar (which
//! the backend converts from its JSON Schema, checked like any `json_schema`).

use super::ToolFamily;
use crate::constraint::{Grammar, Trigger};

/// Renames every rule of `gbnf` (definitions and references) to `prefix` + name, leaving
/// string literals, character classes, repetition counts, token references and comments as
/// they are, so that several converted grammars live side by side in one.
pub fn prefix_rules(gbnf: &str, prefix: &str) -> String {
    let b = gbnf.as_bytes();
    let mut out = String::with_capacity(gbnf.len() + gbnf.len() / 4);
    let mut i = 0;
    while i < b.len() {
        let end = match b[i] {
            b'"' => skip_to(b, i, b'"'),
            b'[' => skip_to(b, i, b']'),
            b'{' => skip_to(b, i, b'}'),
            b'<' => skip_to(b, i, b'>'),
            b'#' => gbnf[i..].find('\n').map_or(b.len(), |n| i + n),
            c if is_word(c) => {
                let mut j = i;
                while j < b.len() && is_word(b[j]) {
                    j += 1;
                }
                out.push_str(prefix);
                j
            }
            _ => i + gbnf[i..].chars().next().map_or(1, char::len_utf8),
        };
        out.push_str(&gbnf[i..end]);
        i = end;
    }
    out
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// The index just past the `close` that ends the span opened at `start` (backslash escapes
/// honoured), or the end of the text.
fn skip_to(b: &[u8], start: usize, close: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == close => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The grammar that makes the output tool calls in `family`'s form, for tools given as
/// `(name, argument grammar with start rule root)`. With `lazy`, it engages only once the
/// family's call opener appears (tool_choice `auto`); otherwise the answer is calls only.
pub fn tool_grammar(family: ToolFamily, tools: &[(String, Grammar)], parallel: bool, lazy: bool) -> Grammar {
    let key = family.args_key();
    let mut g = String::new();
    let alternatives: Vec<String> = (0..tools.len()).map(|i| format!("t{i}-call")).collect();
    let body =
        format!("\"{{\" tool-ws \"\\\"name\\\"\" tool-ws \":\" tool-ws ({}) tool-ws \"}}\"", alternatives.join(" | "));
    let root = match family {
        ToolFamily::Llama3 => "root ::= tool-body\n".to_string(),
        ToolFamily::Mistral => {
            let more = if parallel { " (tool-ws \",\" tool-ws tool-body)*" } else { "" };
            format!("root ::= \"[TOOL_CALLS]\" tool-ws \"[\" tool-ws tool-body{more} tool-ws \"]\"\n")
        }
        ToolFamily::Hermes | ToolFamily::Generic => {
            let more = if parallel { " (tool-ws tool-block)*" } else { "" };
            format!(
                "root ::= tool-block{more}\ntool-block ::= \"<tool_call>\" tool-ws tool-body tool-ws \"</tool_call>\"\n"
            )
        }
    };
    g.push_str(&root);
    g.push_str(&format!("tool-body ::= {body}\ntool-ws ::= [ \\t\\n]{{0,3}}\n"));
    for (i, (name, args)) in tools.iter().enumerate() {
        g.push_str(&format!(
            "t{i}-call ::= \"\\\"{name}\\\"\" tool-ws \",\" tool-ws \"\\\"{key}\\\"\" tool-ws \":\" tool-ws t{i}-root\n"
        ));
        g.push_str(&prefix_rules(&compact(&args.gbnf), &format!("t{i}-")));
        g.push('\n');
    }
    let triggers = if lazy { vec![trigger(family)] } else { Vec::new() };
    Grammar { gbnf: g.into(), triggers }
}

/// The converter's whitespace rule lets a value run to dozens of blanks per separator, which
/// a small model can fill its whole budget with; call arguments get at most one space.
fn compact(gbnf: &str) -> String {
    gbnf.lines().map(|l| if l.starts_with("space ::=") { "space ::= \" \"?" } else { l }).collect::<Vec<_>>().join("\n")
}

/// What engages a lazy tool grammar: the family's call opener.
fn trigger(family: ToolFamily) -> Trigger {
    match family {
        ToolFamily::Hermes | ToolFamily::Generic => Trigger::Word("<tool_call>".into()),
        ToolFamily::Mistral => Trigger::Word("[TOOL_CALLS]".into()),
        ToolFamily::Llama3 => Trigger::AtStart("{".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixing_renames_rules_only() {
        let g =
            "root ::= \"{\" space item{1,3} [a-z\\]] <[12]> # note: root\nitem ::= \"x\\\"y\" | root\nspace ::= \" \"?";
        let p = prefix_rules(g, "t0-");
        assert_eq!(
            p,
            "t0-root ::= \"{\" t0-space t0-item{1,3} [a-z\\]] <[12]> # note: root\nt0-item ::= \"x\\\"y\" | t0-root\nt0-space ::= \" \"?"
        );
    }

    #[test]
    fn hermes_grammar_has_one_alternative_per_tool_and_a_lazy_trigger() {
        let args = Grammar { gbnf: "root ::= \"{}\"".into(), triggers: Vec::new() };
        let tools = vec![("a".to_string(), args.clone()), ("b_2".to_string(), args)];
        let g = tool_grammar(ToolFamily::Hermes, &tools, true, true);
        assert!(g.gbnf.contains("(t0-call | t1-call)"), "{}", g.gbnf);
        assert!(g.gbnf.contains("t1-call ::= \"\\\"b_2\\\"\""), "{}", g.gbnf);
        assert!(g.gbnf.contains("root ::= tool-block (tool-ws tool-block)*"));
        assert_eq!(g.triggers.len(), 1);
        let spaced = Grammar::strict("root ::= \"{\" space \"}\"\nspace ::= | \" \" | \"\\n\"{1,2} [ \\t]{0,20}");
        let g = tool_grammar(ToolFamily::Hermes, &[("s".into(), spaced)], false, false);
        assert!(g.gbnf.contains("t0-space ::= \" \"?\n") && !g.gbnf.contains("{0,20}"), "{}", g.gbnf);
        let single = tool_grammar(ToolFamily::Llama3, &tools[..1], true, false);
        assert!(single.gbnf.starts_with("root ::= tool-body\n") && single.triggers.is_empty());
        assert!(single.gbnf.contains("\\\"parameters\\\""));
    }
}
