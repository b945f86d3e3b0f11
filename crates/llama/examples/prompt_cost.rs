//! What preparing a chat prompt costs on the request's side, step by step: one rendering of
//! the chat template, the marked rendering (which renders a second time with sentinels to
//! locate the client's strings), and tokenizing the result with the model's vocabulary.
//!
//!     cargo run --release -p hearth-llama --example prompt_cost -- MODEL.gguf [ROUNDS]
//!
//! Prints the median of ROUNDS (default 15) for a short chat, a 32-turn conversation and one
//! 256 KiB message, and the share of the marked rendering's second pass in the whole.

use hearth_engine::template::ChatTemplate;
use hearth_engine::{BackendLoader, ModelInfo, TemplateMessage, Tokenizer};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn median(rounds: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn msg(role: &str, content: String) -> TemplateMessage {
    TemplateMessage { role: role.into(), content, ..Default::default() }
}

fn conversations() -> Vec<(&'static str, Vec<TemplateMessage>)> {
    let sentence = "The quick brown fox jumps over the lazy dog while the kettle boils. ";
    let turns = (0..32).map(|i| msg(if i % 2 == 0 { "user" } else { "assistant" }, sentence.repeat(6))).collect();
    vec![
        ("short chat (system + user)", vec![msg("system", "You are helpful.".into()), msg("user", "Hi there!".into())]),
        ("32 turns of ~400 bytes", turns),
        ("one 256 KiB message", vec![msg("user", sentence.repeat(256 * 1024 / sentence.len()))]),
    ]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().ok_or("usage: prompt_cost MODEL.gguf [ROUNDS]")?);
    let rounds: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(15).max(1);
    let info = ModelInfo::from_file(&path)?;
    let tok = Tokenizer::new(hearth_llama::LlamaLoader::new()?.vocab(&info)?);
    let piece = |t: Option<u32>| t.map(|t| String::from_utf8_lossy(&tok.piece(t)).into_owned()).unwrap_or_default();
    let (bos, eos) = (piece(tok.special().bos), piece(tok.special().eos));
    let template = ChatTemplate::new(&info.template, &info.arch);
    println!("{} ({} rounds, medians)", info.id, rounds);
    println!("| prompt | bytes | tokens | render once | render marked (2 passes) | tokenize | second pass share |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, messages) in conversations() {
        let once = median(rounds, || drop(template.render(&messages, None, true, &bos, &eos)));
        let marked = median(rounds, || drop(template.render_marked(&messages, None, (&bos, &eos), &tok)));
        let (text, ranges) = template.render_marked(&messages, None, (&bos, &eos), &tok)?;
        let mut n = 0;
        let tokenize = median(rounds, || n = tok.tokenize_marked(&text, &ranges, false).len());
        let extra = marked.saturating_sub(once);
        let share = extra.as_secs_f64() / (marked + tokenize).as_secs_f64() * 100.0;
        println!(
            "| {name} | {} | {n} | {:.3} ms | {:.3} ms | {:.3} ms | {share:.1}% |",
            text.len(),
            once.as_secs_f64() * 1e3,
            marked.as_secs_f64() * 1e3,
            tokenize.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
