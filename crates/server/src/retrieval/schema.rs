//! The shapes of retrieval's answers, as the handlers send them and `/openapi.json` documents
//! them (one type for both, so the document cannot drift from the wire).

use hearth_protocol::openai::Usage;
use hearth_rag::store::{Collection, DocumentInfo, Hit, PutOutcome, SearchMode, SessionInfo, Turn};
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
    Job
);
list_of!(
    /// Stored conversations, most recent first.
    Sessions,
    SessionInfo
);

/// A stored conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// The client's session id.
    pub id: String,
    /// Its turns, oldest first.
    pub turns: Vec<Turn>,
}

/// A deleted conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDeleted {
    /// The client's session id.
    pub id: String,
    /// Always true.
    pub deleted: bool,
}

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

/// A grounded answer (`POST /api/v1/generate`, not streamed).
#[derive(Debug, Serialize, ToSchema)]
pub struct Generation {
    /// `gen-...`.
    pub id: String,
    /// `generation`.
    #[schema(value_type = String, pattern = "^generation$")]
    pub object: &'static str,
    /// Seconds since the epoch.
    pub created: u64,
    /// The model that answered.
    pub model: String,
    /// The answer, with `[n]` markers naming its citations.
    pub answer: String,
    /// The conversation the turn was stored in, if any.
    pub session_id: Option<String>,
    /// `stop` or `length`.
    pub finish_reason: String,
    /// The sources given to the model, numbered as the answer's `[n]` markers.
    #[schema(value_type = Vec<Object>)]
    pub citations: Vec<serde_json::Value>,
    /// Token counts.
    pub usage: Usage,
}

/// A grounded answer from uploaded files (`POST /api/v1/generate/upload`).
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadGeneration {
    /// The answer.
    #[serde(flatten)]
    pub generation: Generation,
    /// The uploaded files as stored.
    pub documents: Vec<Stored>,
    /// The collection they went into; null when it was a temporary one, removed after.
    pub collection: Option<String>,
}

/// A stored document and what storing it did (a finished job's `result`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Stored {
    /// The document.
    pub document: DocumentInfo,
    /// Created, replaced, or unchanged (the same content was there).
    pub outcome: PutOutcome,
}

/// An ingestion job as `GET /jobs/{id}` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Job {
    /// Id.
    pub id: String,
    /// The key that uploaded it (`""`: an admin key, or a server without keys).
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schema(required = false)]
    pub owner: String,
    /// `queued`, `running`, `done` or `failed`.
    #[schema(value_type = String, pattern = "^(queued|running|done|failed)$")]
    pub status: &'static str,
    /// Collection.
    pub collection: String,
    /// File name.
    pub document: String,
    /// Chunks embedded so far.
    pub chunks_done: usize,
    /// Chunks in all (known once chunked).
    pub chunks_total: usize,
    /// The stored document and what storing it did, when done.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Stored>)]
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
