//! Chat templates with hostile messages: rendering is an answer or a typed error, and the
//! rendered prompt's control tokens are only the template's own: with ChatML (and a ChatML
//! template that writes tool calls' ids, names and arguments and tool results' call ids raw,
//! as Qwen's and Hermes' do), exactly one `<|im_start|>` and one `<|im_end|>` per message plus
//! the generation prompt's, whatever the messages spell.
#![no_main]

use hearth_engine::template::ChatTemplate;
use hearth_engine::tokenizer::testing::ByteVocab;
use hearth_engine::{TemplateMessage, TemplateSource, Tokenizer};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

const ROLES: [&str; 5] = ["system", "user", "assistant", "tool", "developer"];

/// A ChatML template that writes every tool field raw.
const TOOLS: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}\
{% for c in m.tool_calls or [] %}<tool_call>{{ c.id }}:{{ c.function.name }}:{{ c.function.arguments }}</tool_call>{% endfor %}\
{% if m.tool_call_id %}[{{ m.tool_call_id }}]{% endif %}<|im_end|>\n{% endfor %}\
{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Messages from the bytes: 0xFF separates them; each one's first byte picks its role and
/// whether it has a name, a tool call (id, name and arguments from the text) or a tool call id.
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
                    let call = serde_json::json!({"id": text.clone(), "type": "function",
                        "function": {"name": text.clone(), "arguments": text.clone()}});
                    m.tool_calls = Some(vec![call]);
                }
                3 => m.tool_call_id = Some(text.clone()),
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
    let chatml = || vec!["<|im_start|>".to_string(), "<|im_end|>".to_string()];
    let (source, arch, controls) = match pick % 3 {
        0 => (TemplateSource::Builtin("chatml"), "chatml", chatml()),
        1 => (TemplateSource::Builtin("gemma"), "gemma", vec!["<start_of_turn>".into(), "<end_of_turn>".into()]),
        _ => (TemplateSource::Gguf(TOOLS.into()), "llama", chatml()),
    };
    let is_chatml = pick % 3 != 1;
    let template = ChatTemplate::new(&source, arch);
    let tok = Tokenizer::new(Arc::new(ByteVocab { controls, ..Default::default() }));
    let Ok((text, ranges)) = template.render_marked(&msgs, None, ("", ""), &tok) else { return };
    for r in &ranges {
        assert!(text.get(r.clone()).is_some(), "a range that is not a slice of the prompt");
    }
    let ids = tok.tokenize_marked(&text, &ranges, false);
    if is_chatml {
        let starts = ids.iter().filter(|&&t| t == 300).count();
        let ends = ids.iter().filter(|&&t| t == 301).count();
        assert_eq!((starts, ends), (msgs.len() + 1, msgs.len()), "a message added control tokens: {text:?}");
    }
});
