//! Hearth's embedding engine as a library: GGUF embedding models and rerankers through
//! llama.cpp, without the HTTP server.
//!
//! An [`EmbeddingEngine`] owns one worker thread per loaded model. Calls from any number of
//! threads are packed into shared decode calls by that worker (the same batching the server
//! uses), so embedding from many threads at once is as fast as one large batch.
//!
//! ```
//! use hearth_embed::{EmbeddingEngine, EngineConfig};
//! # let home = std::env::var("HEARTH_HOME").map(std::path::PathBuf::from)
//! #     .unwrap_or_else(|_| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/hearth"));
//! let path = home.join("models/all-MiniLM-L6-v2.Q8_0.gguf");
//! let engine = EmbeddingEngine::new(EngineConfig::builder().model_path(&path).threads(2).build()?)?;
//! let info = engine.model_info("all-MiniLM-L6-v2.Q8_0")?;
//! assert_eq!((info.dimension, info.max_tokens), (384, 512));
//!
//! let v = engine.embed("A man is eating food.")?;
//! let batch = engine.embed_batch(&["A man is eating a piece of bread.", "The stock market fell."])?;
//! let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
//! assert!(cos(&v, &batch[0]) > cos(&v, &batch[1]));
//! # Ok::<(), hearth_embed::EmbedError>(())
//! ```
//!
//! Calls block the calling thread until the answer is ready; from async code, call them
//! through `tokio::task::spawn_blocking` (or use the server's engine types directly).

mod config;
mod engine;
mod error;

pub use config::{EngineConfig, EngineConfigBuilder};
pub use engine::{EmbeddingEngine, ModelDetails};
pub use error::EmbedError;
pub use hearth_engine::Pooling;
