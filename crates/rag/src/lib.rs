//! Retrieval over the user's documents: parsers ([`parse`]), chunking by the embedding model's
//! tokens ([`chunk`]).

pub mod chunk;
pub mod fixtures;
pub mod parse;
