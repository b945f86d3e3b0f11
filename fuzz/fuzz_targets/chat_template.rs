//! Chat templates with hostile messages: rendering is an answer or a typed error, and the
//! rendered prompt's control tokens are only the template's own: with ChatML, exactly one
//! `<|im_start|>` and one `<|im_end|>` per message plus the generation prompt's, whatever the
//! messages spell.
#![no_main]

use hearth_engine::template::ChatTemplate;
use hearth_engine::tokenizer::testing::ByteVocab;
use hearth_engine::{TemplateMessage, TemplateSource, Tokenizer};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

const ROLES: [&str; 5] = ["system", "user", "assistant", "tool", "developer"];

/// Messages from the bytes: 0xFF separates them; each one's first byte picks its role and
/// whether it has a name or tool call arguments.
fn messages(data: &[u8]) -> Vec<TemplateMessage> {
    data.split(|&b| b == 0xFF)
        .take(16)
        .map(|part| {
            let (head, body) = part.split_first().map_or((0, &[][..]), |(h, b)| (*h, b));
            let text = String::from_utf8_lossy(body).into_owned();
            let mut m = TemplateMessage { role: ROLES[head as usize % ROLES.len()].into(), ..Default::default() };
            match head / 8 % 4 {
                1 => m.name = Some(text.clone()),
                2 => {
                    let call = serde_json::json!({"id": "c1", "type": "function",
                        "function": {"name": "f", "arguments": text.clone()}});
                    m.tool_calls = Some(vec![call]);
                }
                _ => {}
            }
            m.content = text;
            m
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let msgs = messages(rest);
    let (name, controls) = match pick % 2 {
        0 => ("chatml", vec!["<|im_start|>".to_string(), "<|im_end|>".to_string()]),
        _ => ("gemma", vec!["<start_of_turn>".to_string(), "<end_of_turn>".to_string()]),
    };
    let template = ChatTemplate::new(&TemplateSource::Builtin(name), name);
    let tok = Tokenizer::new(Arc::new(ByteVocab { controls, ..Default::default() }));
    let Ok((text, ranges)) = template.render_marked(&msgs, None, ("", ""), &tok) else { return };
    for r in &ranges {
        assert!(text.get(r.clone()).is_some(), "a range that is not a slice of the prompt");
    }
    let ids = tok.tokenize_marked(&text, &ranges, false);
    if name == "chatml" {
        let starts = ids.iter().filter(|&&t| t == 300).count();
        let ends = ids.iter().filter(|&&t| t == 301).count();
        assert_eq!((starts, ends), (msgs.len() + 1, msgs.len()), "a message added control tokens: {text:?}");
    }
});
