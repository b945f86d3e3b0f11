//! Retrieval over the user's documents: parsers ([`parse`]), chunking by the embedding model's
//! tokens ([`chunk`]), the store trait ([`store`]) with the embedded SQLite store ([`sqlite`])
//! and its in-memory int8 vector index ([`index`]).

pub mod chunk;
pub mod fixtures;
pub mod index;
pub mod parse;
pub mod sqlite;
pub mod store;
