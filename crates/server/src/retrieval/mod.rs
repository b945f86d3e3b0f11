//! Retrieval over the user's documents: collections, uploads (parsed at once, then chunked,
//! embedded and stored by a background job), jobs, and search.
//!
//! - [`ingest`]: the job that turns a parsed document into stored chunks;
//! - [`routes`]: the HTTP handlers; [`generate`]: grounded answers;
//! - [`ground`]: retrieval fitted to the chat model's context, numbered sources.

pub mod generate;
pub mod ingest;
pub mod routes;
pub mod schema;
