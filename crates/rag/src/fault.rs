//! Typed causes inside [`crate::store::StoreError`]: input a store refuses ([`Invalid`], the
//! client's 400) and a database that fails ([`Fault`], for the log, with the library's own
//! error as its source).

use std::path::PathBuf;
use thiserror::Error;

/// Input a store refuses; each message names the rule it breaks.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// A collection name outside the allowed characters or length.
    #[error("a collection name is 1-64 characters of letters, digits, '-', '_' or '.'")]
    CollectionName,
    /// An embedding width the store cannot index.
    #[error("embedding width {got} is out of range (1 to {max})")]
    Width {
        /// The width asked for.
        got: usize,
        /// The widest this store takes.
        max: usize,
    },
    /// A retrieval session id outside the allowed characters or length.
    #[error("a session id is 1-128 printable ASCII characters")]
    SessionId,
    /// A vector or hybrid search without the query's embedding.
    #[error("vector search needs the query's embedding")]
    NoQueryVector,
    /// A conversation id outside the allowed characters or length.
    #[error("a conversation id is 1-64 letters, digits, '-' or '_'")]
    ConversationId,
    /// A conversation title over the limit.
    #[error("a title is at most {0} characters")]
    TitleTooLong(usize),
    /// A conversation title with control characters.
    #[error("a title cannot contain control characters")]
    TitleControl,
    /// More messages than a conversation holds.
    #[error("a conversation holds at most {0} messages")]
    TooManyMessages(usize),
    /// A message with a role conversations do not keep.
    #[error("messages[{0}].role must be \"system\", \"user\", \"assistant\" or \"tool\"")]
    MessageRole(usize),
    /// A message whose content is not a string.
    #[error("messages[{0}].content must be a string")]
    MessageContent(usize),
    /// A conversation created with an id that is taken.
    #[error("conversation `{0}` exists already")]
    ConversationExists(String),
    /// Text the database cannot hold (a NUL character in PostgreSQL).
    #[error("the text holds a character the store cannot keep (NUL)")]
    Unstorable,
    /// A store URL that does not parse.
    #[error("not a PostgreSQL URL")]
    Url,
    /// An `sslrootcert` file that is unreadable or holds no usable certificate.
    #[error("sslrootcert {}: not a readable PEM file with a valid certificate", .0.display())]
    RootCert(PathBuf),
}

/// A database that failed; the message is for the log, never for a client.
#[derive(Debug, Error)]
pub enum Fault {
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed or answered with an error.
    #[error("PostgreSQL: {}", chain(.0))]
    Postgres(#[from] postgres::Error),
    /// The first connection to PostgreSQL failed.
    #[error("cannot connect to PostgreSQL: {}", chain(.0))]
    Connect(postgres::Error),
    /// No pooled PostgreSQL connection came free in time.
    #[error("no PostgreSQL connection: {0}")]
    Pool(#[from] r2d2::Error),
    /// The store's folder could not be made.
    #[error("cannot create {}: {source}", .path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error("TLS set-up: {0}")]
    Tls(#[from] rustls::Error),
    /// A stored conversation is not valid JSON.
    #[error("a stored conversation is not valid JSON: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// A row written a moment ago is not there.
    #[error("the {0} vanished while it was being written")]
    Vanished(&'static str),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// pgvector is missing and this role may not create it.
    #[error("pgvector is not installed in this database and this role may not create it: run `CREATE EXTENSION vector` as a superuser")]
    NoPgvector,
    /// pgvector is older than HNSW indexes.
    #[error("pgvector {major}.{minor} has no HNSW index; 0.5 or newer is needed")]
    OldPgvector {
        /// Major version.
        major: u32,
        /// Minor version.
        minor: u32,
    },
    /// The store's schema is newer than this build.
    #[error("the store's schema is version {stored}, newer than this Hearth ({supported}); upgrade Hearth")]
    NewerSchema {
        /// The stored version.
        stored: i64,
        /// This build's version.
        supported: i64,
    },
}

/// An error with its causes (e.g. "error performing TLS handshake: invalid peer certificate").
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}
