//! The store behind one trait: collections of documents, their chunks with embeddings, and
//! vector, keyword and hybrid search. [`crate::sqlite::SqliteStore`] is the embedded one,
//! [`crate::postgres::PgStore`] the shared one (PostgreSQL with pgvector).

pub use crate::error::StoreError;
pub use crate::fault::{Fault, Invalid};
use serde::{Deserialize, Serialize};

/// A collection with its counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Collection {
    /// Name (unique).
    pub name: String,
    /// Embedding width.
    pub dim: usize,
    /// The embedding model its vectors come from.
    pub model: String,
    /// Documents in it.
    pub documents: u64,
    /// Chunks in it.
    pub chunks: u64,
    /// Bytes of the uploaded files its documents came from.
    pub bytes: u64,
    /// Creation time, seconds since the epoch.
    pub created: u64,
}

/// A document to store.
#[derive(Debug, Clone)]
pub struct NewDocument {
    /// Its name (file name); a new document with the same name replaces the old one.
    pub name: String,
    /// Title, if the format has one.
    pub title: Option<String>,
    /// SHA-256 of its bytes (hex): the same content is stored once per collection.
    pub sha256: String,
    /// User metadata (a JSON object) for filtering.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Size of the original file.
    pub bytes: u64,
}

/// A chunk to store.
#[derive(Debug, Clone)]
pub struct NewChunk {
    /// Its text.
    pub text: String,
    /// Page (PDF).
    pub page: Option<u32>,
    /// Section heading.
    pub section: Option<String>,
    /// Character offsets in the document's text.
    pub start: usize,
    /// End offset.
    pub end: usize,
    /// Its embedding (normalised).
    pub embedding: Vec<f32>,
}

/// A stored document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentInfo {
    /// Id (unique in the store).
    pub id: i64,
    /// Name.
    pub name: String,
    /// Title.
    pub title: Option<String>,
    /// Content hash.
    pub sha256: String,
    /// User metadata.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Chunks.
    pub chunks: u64,
    /// Original size in bytes.
    pub bytes: u64,
    /// When stored, seconds since the epoch.
    pub created: u64,
}

/// What storing a document did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PutOutcome {
    /// A new document.
    Created,
    /// A document of the same name was replaced (its old chunks are gone).
    Replaced,
    /// The same content was already stored; nothing changed.
    Unchanged,
}

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Embedding similarity.
    Vector,
    /// Full-text (FTS5, BM25).
    Keyword,
    /// Both, fused by reciprocal rank.
    #[default]
    Hybrid,
}

/// A search.
#[derive(Debug, Clone)]
pub struct Query {
    /// The query's embedding (vector and hybrid).
    pub vector: Option<Vec<f32>>,
    /// The query's text (keyword and hybrid).
    pub text: String,
    /// Mode.
    pub mode: SearchMode,
    /// Results wanted.
    pub top_k: usize,
    /// Only documents whose metadata has these values.
    pub filter: serde_json::Map<String, serde_json::Value>,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Hit {
    /// Chunk id.
    pub chunk_id: i64,
    /// Document id.
    pub document_id: i64,
    /// Document name.
    pub document: String,
    /// Document title.
    pub title: Option<String>,
    /// The chunk's text.
    pub text: String,
    /// Page.
    pub page: Option<u32>,
    /// Section.
    pub section: Option<String>,
    /// Offsets.
    pub start: usize,
    /// End offset.
    pub end: usize,
    /// Score: cosine similarity (vector), BM25 relevance (keyword, higher is better) or RRF.
    pub score: f32,
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Turn {
    /// `user` or `assistant`.
    pub role: String,
    /// What was said.
    pub content: String,
    /// When, seconds since the epoch.
    pub created: u64,
}

/// A conversation's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    /// The client's session id.
    pub id: String,
    /// Turns stored.
    pub turns: u64,
    /// Last turn, seconds since the epoch.
    pub updated: u64,
}

/// A store of collections (and of conversation memory and conversations, kept beside them).
pub trait VectorStore: crate::conversation::ConversationStore + Send + Sync {
    /// Creates a collection for embeddings of width `dim` from `model`.
    ///
    /// # Errors
    /// It exists, or a bad name.
    fn create_collection(&self, name: &str, dim: usize, model: &str) -> Result<Collection, StoreError>;
    /// All collections with counts.
    ///
    /// # Errors
    /// Backend failures.
    fn list_collections(&self) -> Result<Vec<Collection>, StoreError>;
    /// One collection.
    ///
    /// # Errors
    /// Backend failures.
    fn collection(&self, name: &str) -> Result<Option<Collection>, StoreError>;
    /// Deletes a collection and everything in it; whether it existed.
    ///
    /// # Errors
    /// Backend failures.
    fn delete_collection(&self, name: &str) -> Result<bool, StoreError>;
    /// Stores a document and its chunks in one transaction: the same content again is
    /// `Unchanged`, a new content under an existing name replaces it atomically.
    ///
    /// # Errors
    /// No collection, wrong embedding width, backend failures.
    fn put_document(
        &self,
        collection: &str,
        doc: NewDocument,
        chunks: Vec<NewChunk>,
    ) -> Result<(DocumentInfo, PutOutcome), StoreError>;
    /// The document with this content hash, if stored (checked before embedding a re-upload).
    ///
    /// # Errors
    /// No collection, backend failures.
    fn find_by_hash(&self, collection: &str, sha256: &str) -> Result<Option<DocumentInfo>, StoreError>;
    /// Documents of a collection.
    ///
    /// # Errors
    /// No collection, backend failures.
    fn list_documents(&self, collection: &str) -> Result<Vec<DocumentInfo>, StoreError>;
    /// One document.
    ///
    /// # Errors
    /// No collection, backend failures.
    fn document(&self, collection: &str, id: i64) -> Result<Option<DocumentInfo>, StoreError>;
    /// Deletes a document and its chunks; whether it existed.
    ///
    /// # Errors
    /// No collection, backend failures.
    fn delete_document(&self, collection: &str, id: i64) -> Result<bool, StoreError>;
    /// Appends turns to a session (created on first use).
    ///
    /// # Errors
    /// A bad session id, backend failures.
    fn append_turns(&self, session: &str, turns: &[(String, String)]) -> Result<(), StoreError>;
    /// A session's turns, oldest first (empty for an unknown session).
    ///
    /// # Errors
    /// Backend failures.
    fn turns(&self, session: &str) -> Result<Vec<Turn>, StoreError>;
    /// All sessions, most recently updated first.
    ///
    /// # Errors
    /// Backend failures.
    fn list_sessions(&self) -> Result<Vec<SessionInfo>, StoreError>;
    /// Deletes a session; whether it existed.
    ///
    /// # Errors
    /// Backend failures.
    fn delete_session(&self, session: &str) -> Result<bool, StoreError>;
    /// Searches a collection.
    ///
    /// # Errors
    /// No collection, a missing vector for vector/hybrid mode, backend failures.
    fn search(&self, collection: &str, query: &Query) -> Result<Vec<Hit>, StoreError>;
    /// Records an ingestion job's state (a JSON object), so that every server sharing this
    /// store can report it and a restarted one still knows it. Jobs older than a week go.
    ///
    /// # Errors
    /// Backend failures.
    fn put_job(&self, id: &str, state: &serde_json::Value) -> Result<(), StoreError>;
    /// A job's last recorded state, and when it was recorded (seconds since the epoch).
    ///
    /// # Errors
    /// Backend failures.
    fn job(&self, id: &str) -> Result<Option<(serde_json::Value, u64)>, StoreError>;
    /// Whether several servers may share this store (then a job another server runs is not
    /// in this one's memory and may still be going).
    fn shared(&self) -> bool;
    /// Checks the store's consistency (documents against their chunks, the indexes); returns
    /// the problems found (none: consistent).
    ///
    /// # Errors
    /// When the checks cannot run.
    fn check(&self) -> Result<Vec<String>, StoreError>;
}

/// Reciprocal rank fusion of ranked lists of chunk ids: `sum 1 / (k + rank)`, best first.
pub fn rrf(lists: &[Vec<i64>], k: f32) -> Vec<(i64, f32)> {
    let mut score: std::collections::HashMap<i64, f32> = std::collections::HashMap::new();
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            *score.entry(*id).or_default() += 1.0 / (k + rank as f32 + 1.0);
        }
    }
    let mut out: Vec<(i64, f32)> = score.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// How long finished and abandoned job records are kept, in seconds.
pub(crate) const JOB_TTL: i64 = 7 * 24 * 3600;

/// Whether `name` may own what a store keeps: 1-64 letters, digits, `-`, `_`, `.` or `@`,
/// starting with a letter or digit. A collection or session of an owner is stored as
/// `owner/name`.
pub fn valid_owner(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// Checks a new collection's name (`name`, or `owner/name`) and embedding width.
pub(crate) fn check_collection(name: &str, dim: usize) -> Result<(), StoreError> {
    let local = match name.split_once('/') {
        Some((owner, local)) if valid_owner(owner) => local,
        _ => name,
    };
    let ok = !local.is_empty()
        && local.len() <= 64
        && local.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(StoreError::Invalid(Invalid::CollectionName));
    }
    if dim == 0 || dim > MAX_WIDTH {
        return Err(StoreError::Invalid(Invalid::Width { got: dim, max: MAX_WIDTH }));
    }
    Ok(())
}

/// The widest embedding any store takes.
pub const MAX_WIDTH: usize = 65536;

/// Checks a session id (with its owner's `owner/` before it: 1-128 characters after that).
pub(crate) fn check_session(id: &str) -> Result<(), StoreError> {
    let ok = !id.is_empty() && id.len() <= 128 + 65 && id.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(Invalid::SessionId))
    }
}

/// Checks that every chunk's embedding has the collection's width.
pub(crate) fn check_widths(collection: &str, dim: usize, chunks: &[NewChunk]) -> Result<(), StoreError> {
    match chunks.iter().find(|c| c.embedding.len() != dim) {
        Some(bad) => {
            Err(StoreError::Dimension { collection: collection.to_string(), want: dim, got: bad.embedding.len() })
        }
        None => Ok(()),
    }
}

/// The query's embedding for vector and hybrid search, checked against the collection's width.
pub(crate) fn query_vector<'q>(collection: &str, dim: usize, q: &'q Query) -> Result<&'q [f32], StoreError> {
    let v = q.vector.as_deref().ok_or(StoreError::Invalid(Invalid::NoQueryVector))?;
    if v.len() != dim {
        return Err(StoreError::Dimension { collection: collection.into(), want: dim, got: v.len() });
    }
    Ok(v)
}

/// Runs a search in `q.mode` from its two halves: `vector(n)` and `keyword(n)`, each the best
/// `n` chunk ids with their scores. Hybrid asks both for a wider pool and fuses the ranks.
pub(crate) fn combine(
    q: &Query,
    vector: impl FnOnce(usize) -> Result<Vec<(i64, f32)>, StoreError>,
    keyword: impl FnOnce(usize) -> Result<Vec<(i64, f32)>, StoreError>,
) -> Result<Vec<(i64, f32)>, StoreError> {
    let k = q.top_k.clamp(1, 1000);
    let mut scored = match q.mode {
        SearchMode::Vector => vector(k)?,
        SearchMode::Keyword => keyword(k)?,
        SearchMode::Hybrid => {
            let pool = (k * 4).max(50);
            let v: Vec<i64> = vector(pool)?.into_iter().map(|x| x.0).collect();
            let kw: Vec<i64> = keyword(pool)?.into_iter().map(|x| x.0).collect();
            rrf(&[v, kw], 60.0)
        }
    };
    scored.truncate(k);
    Ok(scored)
}

/// The words of a keyword query (letters and digits only, lower-cased, deduplicated, at most
/// 64), so user text never reaches a full-text query syntax.
pub(crate) fn query_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).take(64).map(str::to_lowercase).collect();
    words.sort();
    words.dedup();
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_rewards_agreement() {
        let fused = rrf(&[vec![1, 2, 3], vec![3, 1, 4]], 60.0);
        assert_eq!(fused[0].0, 1, "first and second");
        assert_eq!(fused[1].0, 3, "third and first");
        assert_eq!(fused.len(), 4);
    }
}
