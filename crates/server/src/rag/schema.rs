//! The shapes of retrieval's answers, as the handlers send them and `/openapi.json` documents
//! them (one type for both, so the document cannot drift from the wire).

use hearth_rag::store::{Collection, DocumentInfo, Hit, PutOutcome, SearchMode};
use serde::Serialize;
use utoipa::ToSchema;

/// A named list type (`object` is always `list`). One concrete type per item, not a generic:
/// utoipa names a generic's schema once, so `List<A>` and `List<B>` would share one.
macro_rules! list_of {
    ($(#[$doc:meta])* $name:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            /// `list`.
            #[schema(value_type = String, pattern = "^list$")]
            pub object: &'static str,
            /// The items.
            pub data: Vec<$item>,
        }

        impl $name {
            /// A list of `data`.
            pub fn of(data: Vec<$item>) -> Self {
                Self { object: "list", data }
            }
        }
    };
}

list_of!(
    /// Collections with their counts.
    Collections,
    Collection
);
list_of!(
    /// Documents of a collection.
    Documents,
    DocumentInfo
);
list_of!(
    /// The ingestion jobs of an upload, one per file.
    Jobs,
    super::Job
);

/// Search results, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// `list`.
    #[schema(value_type = String, pattern = "^list$")]
    pub object: &'static str,
    /// How the results were found.
    pub mode: SearchMode,
    /// The chunks, best first.
    pub data: Vec<Hit>,
}

/// A deleted collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionDeleted {
    /// Its name.
    pub name: String,
    /// Always true.
    pub deleted: bool,
}

/// A deleted document.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentDeleted {
    /// Its id.
    pub id: i64,
    /// Always true.
    pub deleted: bool,
}

/// A stored document and what storing it did (a finished job's `result`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Stored {
    /// The document.
    pub document: DocumentInfo,
    /// Created, replaced, or unchanged (the same content was there).
    pub outcome: PutOutcome,
}
