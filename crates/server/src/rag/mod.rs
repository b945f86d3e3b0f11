//! Retrieval over the user's documents: collections, uploads (parsed at once, then chunked,
//! embedded and stored by a background job), jobs, and search.
//!
//! - [`ingest`]: the job that turns a parsed document into stored chunks;
//! - [`routes`]: the HTTP handlers; [`generate`]: grounded answers;
//! - [`ground`]: retrieval fitted to the chat model's context, numbered sources.

pub mod generate;
pub mod ground;
pub mod ingest;
pub mod routes;

use crate::error::ApiError;
use axum::http::StatusCode;
use hearth_rag::chunk::ChunkSpec;
use hearth_rag::parse::{ParseError, ParseLimits};
use hearth_rag::store::{StoreError, VectorStore};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// Jobs remembered for `GET /jobs/{id}`; older finished ones are forgotten.
const MAX_JOBS: usize = 1000;

/// Retrieval settings and state.
pub struct Rag {
    /// The store.
    pub store: Arc<dyn VectorStore>,
    /// Embedding model for chunks and queries (a collection records the model it was built with).
    pub embedding_model: String,
    /// Chunk sizes, in the embedding model's tokens.
    pub chunk: ChunkSpec,
    /// Parser limits (expanded size).
    pub parse_limits: ParseLimits,
    /// Largest uploaded file.
    pub max_upload_bytes: usize,
    jobs: Mutex<Jobs>,
}

#[derive(Default)]
struct Jobs {
    by_id: HashMap<String, Job>,
    order: VecDeque<String>,
}

/// An ingestion job as `GET /jobs/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// Id.
    pub id: String,
    /// `queued`, `running`, `done` or `failed`.
    pub status: &'static str,
    /// Collection.
    pub collection: String,
    /// File name.
    pub document: String,
    /// Chunks embedded so far.
    pub chunks_done: usize,
    /// Chunks in all (known once chunked).
    pub chunks_total: usize,
    /// The stored document, when done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Rag {
    /// Retrieval over `store`, embedding with `embedding_model`.
    pub fn new(store: Arc<dyn VectorStore>, embedding_model: String, max_upload_bytes: usize) -> Self {
        Self {
            store,
            embedding_model,
            chunk: ChunkSpec::default(),
            parse_limits: ParseLimits::default(),
            max_upload_bytes,
            jobs: Mutex::new(Jobs::default()),
        }
    }

    /// Registers a queued job.
    pub fn new_job(&self, collection: &str, document: &str) -> Job {
        let job = Job {
            id: crate::generate::new_id("job"),
            status: "queued",
            collection: collection.to_string(),
            document: document.to_string(),
            chunks_done: 0,
            chunks_total: 0,
            result: None,
            error: None,
        };
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.order.push_back(job.id.clone());
        jobs.by_id.insert(job.id.clone(), job.clone());
        while jobs.order.len() > MAX_JOBS {
            let Some(old) = jobs.order.pop_front() else { break };
            jobs.by_id.remove(&old);
        }
        job
    }

    /// Updates a job.
    pub fn update_job(&self, id: &str, f: impl FnOnce(&mut Job)) {
        if let Some(j) = self.jobs.lock().unwrap_or_else(PoisonError::into_inner).by_id.get_mut(id) {
            f(j);
        }
    }

    /// A job by id.
    pub fn job(&self, id: &str) -> Option<Job> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).by_id.get(id).cloned()
    }
}

/// A status with an OpenAI-shaped body.
pub(crate) fn status(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
    param: Option<&str>,
) -> ApiError {
    ApiError::Status { status, code, message: message.into(), param: param.map(str::to_string) }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NoCollection(_) => status(StatusCode::NOT_FOUND, "collection_not_found", e.to_string(), None),
            StoreError::CollectionExists(_) => {
                status(StatusCode::CONFLICT, "collection_exists", e.to_string(), Some("name"))
            }
            StoreError::Invalid(_) | StoreError::Dimension { .. } => {
                status(StatusCode::BAD_REQUEST, "invalid_value", e.to_string(), None)
            }
            StoreError::Backend(detail) => {
                tracing::error!(error = %detail, "store failure");
                ApiError::Internal
            }
        }
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> Self {
        let (s, code) = match &e {
            ParseError::Unsupported(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_document_type"),
            ParseError::Corrupt { .. } => (StatusCode::BAD_REQUEST, "invalid_document"),
            ParseError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "document_too_large"),
            ParseError::Empty => (StatusCode::BAD_REQUEST, "empty_document"),
        };
        status(s, code, e.to_string(), Some("file"))
    }
}
