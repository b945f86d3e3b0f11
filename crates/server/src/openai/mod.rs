//! OpenAI's endpoints: Chat Completions (whole and streamed), Completions, Embeddings, and the
//! rerank and tokenize endpoints llama-server's clients use. Responses has its own folder.

pub mod chat;
mod chat_stream;
pub mod completions;
pub mod embeddings;
pub mod rerank;
pub mod tokenize;
