//! OpenAI-compatible request and response types.

mod chat;
mod common;
mod completions;
mod embeddings;
mod error;
mod models;

pub use chat::*;
pub use common::*;
pub use completions::*;
pub use embeddings::*;
pub use error::*;
pub use models::*;
