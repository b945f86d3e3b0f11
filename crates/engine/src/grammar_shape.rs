//! The shape of a GBNF grammar, measured without parsing it: how deep its groups nest, how
//! many rules it defines and how large its repetition counts are. llama.cpp's parser and
//! grammar engine recurse on each of these, so a grammar past [`crate::limits`] is refused
//! before it reaches them (its syntax is still llama.cpp's to judge).

use crate::limits::{Limit, MAX_GRAMMAR_NESTING, MAX_GRAMMAR_REPEAT, MAX_GRAMMAR_RULES};

/// Where the scanner is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum In {
    Rules,
    Literal,
    Class,
    Comment,
    Repeat,
}

/// Checks `gbnf` against the nesting, rule and repetition limits.
///
/// # Errors
/// The first limit it goes past.
pub(crate) fn check(gbnf: &str) -> Result<(), Limit> {
    let (mut state, mut depth, mut rules) = (In::Rules, 0usize, 0usize);
    let mut number: Option<u64> = None;
    let mut chars = gbnf.chars().peekable();
    while let Some(c) = chars.next() {
        match (state, c) {
            (In::Literal | In::Class, '\\') => {
                chars.next();
            }
            (In::Literal, '"') | (In::Class, ']') | (In::Comment, '\n') => state = In::Rules,
            (In::Literal | In::Class | In::Comment, _) => {}
            (In::Rules, '"') => state = In::Literal,
            (In::Rules, '[') => state = In::Class,
            (In::Rules, '#') => state = In::Comment,
            (In::Rules, '{') => {
                state = In::Repeat;
                number = None;
            }
            (In::Rules, '(') => {
                depth += 1;
                if depth > MAX_GRAMMAR_NESTING {
                    return Err(Limit::GrammarNesting);
                }
            }
            (In::Rules, ')') => depth = depth.saturating_sub(1),
            (In::Rules, ':') if chars.peek() == Some(&':') => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    rules += 1;
                    if rules > MAX_GRAMMAR_RULES {
                        return Err(Limit::GrammarRules);
                    }
                }
            }
            (In::Rules, _) => {}
            (In::Repeat, '0'..='9') => {
                let n = number.unwrap_or(0).saturating_mul(10).saturating_add(u64::from(c as u8 - b'0'));
                if n > MAX_GRAMMAR_REPEAT {
                    return Err(Limit::GrammarRepeat);
                }
                number = Some(n);
            }
            (In::Repeat, '}') => state = In::Rules,
            (In::Repeat, _) => number = None,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_grammars_pass() {
        let g = r#"root ::= "(" [a-z(]+ ")" ws{0,20} # a comment with ( and ::=
ws ::= [ \t\n] | "\"(" "#;
        assert_eq!(check(g), Ok(()));
    }

    #[test]
    fn deep_groups_many_rules_and_huge_repetitions_are_refused() {
        let deep = format!("root ::= {}\"a\"{}", "(".repeat(40_000), ")".repeat(40_000));
        assert_eq!(check(&deep), Err(Limit::GrammarNesting));
        let chain: String = (0..20_000).map(|i| format!("r{i} ::= r{}\n", i + 1)).collect();
        assert_eq!(check(&format!("root ::= r0\n{chain}")), Err(Limit::GrammarRules));
        assert_eq!(check(r#"root ::= "a"{1,100000}"#), Err(Limit::GrammarRepeat));
        assert_eq!(check(r#"root ::= "a"{4096}"#), Ok(()));
    }

    #[test]
    fn parentheses_inside_literals_and_classes_do_not_count() {
        let g = format!("root ::= \"{}\" [{}]", "(".repeat(1000), "(".repeat(1000));
        assert_eq!(check(&g), Ok(()));
    }
}
