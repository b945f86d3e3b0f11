//! Embeds a few sentences and prints their cosine similarities.
//!
//! ```text
//! cargo run --release -p hearth-embed --example similarity -- [MODEL.gguf] [SENTENCE...]
//! ```
//! The model defaults to `$HEARTH_HOME/models/all-MiniLM-L6-v2.Q8_0.gguf` (what
//! `scripts/fetch-models` writes).

use hearth_embed::{EmbeddingEngine, EngineConfig};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = match args.next() {
        Some(p) => PathBuf::from(p),
        None => {
            let home = std::env::var_os("HEARTH_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hearth")))
                .ok_or("set HEARTH_HOME or pass a model path")?;
            home.join("models/all-MiniLM-L6-v2.Q8_0.gguf")
        }
    };
    let mut sentences: Vec<String> = args.collect();
    if sentences.is_empty() {
        sentences = [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The girl is carrying a baby.",
            "A man is riding a horse.",
        ]
        .map(String::from)
        .to_vec();
    }
    let engine = EmbeddingEngine::new(EngineConfig::builder().model_path(&model).build()?)?;
    let id = engine.list_models().remove(0);
    let info = engine.model_info(&id)?;
    println!("{id}: {} dimensions, {} tokens max, {:?} pooling", info.dimension, info.max_tokens, info.pooling);
    let vectors = engine.embed_batch(&sentences)?;
    for (i, a) in vectors.iter().enumerate() {
        for (j, b) in vectors.iter().enumerate().skip(i + 1) {
            let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            println!("{cos:.3}  {:?} ~ {:?}", sentences[i], sentences[j]);
        }
    }
    Ok(())
}
