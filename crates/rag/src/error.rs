//! What can go wrong in a store (shown as `crate::store::StoreError`).

use crate::fault::{Fault, Invalid};
use thiserror::Error;

/// What can go wrong in a store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// No such collection.
    #[error("collection `{0}` does not exist")]
    NoCollection(String),
    /// The collection exists already.
    #[error("collection `{0}` exists already")]
    CollectionExists(String),
    /// An embedding of the wrong width for the collection.
    #[error("embedding has {got} dimensions, collection `{collection}` has {want}")]
    Dimension {
        /// The collection.
        collection: String,
        /// Its width.
        want: usize,
        /// What was given.
        got: usize,
    },
    /// A bad name or argument.
    #[error("{0}")]
    Invalid(Invalid),
    /// The database failed (details for the log).
    #[error("store failure: {0}")]
    Backend(Fault),
    /// An update named a version of a conversation that is no longer the stored one (another
    /// client changed it since).
    #[error("conversation `{id}` changed since version {expected}: it is at version {current}")]
    VersionConflict {
        /// The conversation.
        id: String,
        /// The version the update expected.
        expected: u64,
        /// The stored version.
        current: u64,
    },
    /// The database cannot be reached now (a shared store's server is down or saturated);
    /// trying again later may work.
    #[error("store unavailable: {0}")]
    Unavailable(Fault),
}

impl From<Fault> for StoreError {
    fn from(f: Fault) -> Self {
        StoreError::Backend(f)
    }
}
