//! Retrieval over the user's documents: parsers ([`parse`]), chunking by the embedding model's
//! tokens ([`chunk`]), the store trait ([`store`]) with the embedded SQLite store ([`sqlite`],
//! with its in-memory int8 vector index, [`index`]) and the shared PostgreSQL store
//! ([`postgres`]), chosen by [`location`].

pub mod chunk;
pub mod conversation;
pub mod error;
pub mod fault;
pub mod fixtures;
pub mod index;
pub mod location;
pub mod parse;
pub mod postgres;
pub mod sqlite;
pub mod store;
