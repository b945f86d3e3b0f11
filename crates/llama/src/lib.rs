//! The llama.cpp backend of Hearth's engine, over the `llama-cpp-2` crate.
//!
//! This is the only crate that touches llama.cpp. [`LlamaLoader`] implements the engine's
//! [`BackendLoader`]: it loads a GGUF model on the worker thread, creates one context holding
//! all parallel sequences (one KV stream per sequence, or a unified pool when the configured KV
//! size is smaller than context x sequences), and serves the engine's [`Backend`] calls with it
//! until the worker stops.
//!
//! Every value passed to llama.cpp is checked first: a failed `GGML_ASSERT` aborts the whole
//! process, so no request may choose context parameters, and token ids, positions and batch
//! sizes are bounded before they are handed over.

mod backend;
pub mod gpu;
mod init;
mod lazy;
mod loader;
mod sampler;
mod vocab;

pub use loader::LlamaLoader;
