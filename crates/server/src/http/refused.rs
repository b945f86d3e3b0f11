//! Refusals of the retrieval and conversation routes ([`ApiError::Store`], [`ApiError::Document`],
//! [`ApiError::Missing`], [`ApiError::Disabled`], [`ApiError::Busy`]), each with its status,
//! code and message in one match.
//!
//! [`ApiError::Store`]: crate::http::error::ApiError::Store
//! [`ApiError::Document`]: crate::http::error::ApiError::Document
//! [`ApiError::Missing`]: crate::http::error::ApiError::Missing
//! [`ApiError::Disabled`]: crate::http::error::ApiError::Disabled
//! [`ApiError::Busy`]: crate::http::error::ApiError::Busy

use axum::http::StatusCode;
use hearth_hub::PullError;
use hearth_rag::parse::ParseError;
use hearth_rag::store::{Invalid, StoreError};

/// Status, error type, param, code and message of an OpenAI-shaped error.
pub type Parts = (StatusCode, &'static str, Option<String>, Option<&'static str>, String);

const INVALID: &str = "invalid_request_error";

/// An object a request named that does not exist, or belongs to another key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// An ingestion job.
    Job(String),
    /// A document of a collection.
    Document(i64),
    /// A conversation.
    Conversation(String),
    /// A retrieval session.
    Session(String),
    /// A pull job (`/models/pull/{id}`).
    Pull(String),
}

/// A feature this server runs without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Retrieval (no embedding model).
    Retrieval,
    /// Stored conversations (no store).
    Conversations,
    /// Pulling models (no hub configured, or no models folder).
    Pull,
}

/// Work of one kind that is full now; retrying later works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// Every upload slot is reading a body.
    Uploads {
        /// Uploads read at once.
        limit: usize,
    },
    /// The ingestion queue holds as many jobs as it takes.
    IngestionQueue {
        /// Jobs waiting or running.
        pending: usize,
    },
    /// As many models are being pulled as may be at once.
    Pulls {
        /// Pulls run at once.
        limit: usize,
    },
}

pub(crate) fn missing(m: &Missing) -> Parts {
    let (code, message) = match m {
        Missing::Job(id) => ("job_not_found", format!("no job `{id}`")),
        Missing::Document(id) => ("document_not_found", format!("no document {id} in this collection")),
        Missing::Conversation(id) => ("conversation_not_found", format!("no conversation `{id}`")),
        Missing::Session(id) => ("session_not_found", format!("no session `{id}`")),
        Missing::Pull(id) => ("pull_not_found", format!("no pull job `{id}`")),
    };
    (StatusCode::NOT_FOUND, INVALID, None, Some(code), message)
}

pub(crate) fn disabled(f: Feature) -> Parts {
    let (code, message) = match f {
        Feature::Retrieval => ("retrieval_disabled", "retrieval is not enabled on this server (no embedding model)"),
        Feature::Conversations => ("conversations_disabled", "this server keeps no conversations (no store)"),
        Feature::Pull => ("pull_disabled", "this server does not pull models (no hub or models folder)"),
    };
    (StatusCode::NOT_FOUND, INVALID, None, Some(code), message.into())
}

pub(crate) fn busy(b: Busy) -> Parts {
    let (code, message) = match b {
        Busy::Uploads { limit } => {
            ("too_many_uploads", format!("{limit} uploads are being read already; retry shortly"))
        }
        Busy::IngestionQueue { pending } => (
            "ingestion_queue_full",
            format!("the ingestion queue is full ({pending} jobs waiting or running); retry later"),
        ),
        Busy::Pulls { limit } => {
            ("too_many_pulls", format!("{limit} models are being pulled already; retry when one finishes"))
        }
    };
    (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", None, Some(code), message)
}

pub(crate) fn file_too_large(limit: Option<usize>) -> Parts {
    let message = match limit {
        Some(n) => format!("the upload is larger than the limit of {n} bytes"),
        None => "the upload is larger than the limit".into(),
    };
    (StatusCode::PAYLOAD_TOO_LARGE, INVALID, Some("file".into()), Some("file_too_large"), message)
}

pub(crate) fn document(e: &ParseError) -> Parts {
    let (status, code) = match e {
        ParseError::Unsupported(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_document_type"),
        ParseError::Corrupt { .. } => (StatusCode::BAD_REQUEST, "invalid_document"),
        ParseError::TooLarge { .. } | ParseError::TooManyBlocks { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, "document_too_large")
        }
        ParseError::TooDeep { .. } => (StatusCode::BAD_REQUEST, "document_too_deep"),
        ParseError::Empty => (StatusCode::BAD_REQUEST, "empty_document"),
    };
    (status, INVALID, Some("file".into()), Some(code), e.to_string())
}

pub(crate) fn pull(e: &PullError) -> Parts {
    use PullError as P;
    let (status, code) = match e {
        P::BadReference(_) => (StatusCode::BAD_REQUEST, "invalid_model_reference"),
        P::NoRepo { .. } | P::NoSuchFile { .. } | P::NoSuchQuant { .. } | P::NoGguf(_) | P::IncompleteSplit { .. } => {
            (StatusCode::NOT_FOUND, "model_not_found")
        }
        P::Unauthorized { .. } => (StatusCode::BAD_GATEWAY, "hub_refused"),
        P::Status { .. } | P::Network { .. } | P::Malformed(_) | P::Unverifiable(_) => {
            (StatusCode::BAD_GATEWAY, "hub_error")
        }
        P::ChecksumMismatch { .. } | P::Truncated { .. } => (StatusCode::BAD_GATEWAY, "download_failed"),
        P::DiskFull(_) => (StatusCode::INSUFFICIENT_STORAGE, "disk_full"),
        // A local file problem: the path and cause go to the log only.
        P::Io { .. } => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                Some("internal_error"),
                "internal server error".into(),
            )
        }
    };
    let kind = if status.is_server_error() { "server_error" } else { INVALID };
    (status, kind, Some("model".into()), Some(code), e.to_string())
}

pub(crate) fn store(e: &StoreError) -> Parts {
    let said = e.to_string();
    match e {
        StoreError::NoCollection(_) => (StatusCode::NOT_FOUND, INVALID, None, Some("collection_not_found"), said),
        StoreError::CollectionExists(_) => {
            (StatusCode::CONFLICT, INVALID, Some("name".into()), Some("collection_exists"), said)
        }
        StoreError::Invalid(Invalid::ConversationExists(_)) => {
            (StatusCode::CONFLICT, INVALID, Some("id".into()), Some("conversation_exists"), said)
        }
        StoreError::Invalid(_) | StoreError::Dimension { .. } => {
            (StatusCode::BAD_REQUEST, INVALID, None, Some("invalid_value"), said)
        }
        StoreError::VersionConflict { .. } => {
            (StatusCode::CONFLICT, INVALID, Some("version".into()), Some("conversation_conflict"), said)
        }
        // The fault itself is logged with the request (never returned).
        StoreError::Backend(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            None,
            Some("internal_error"),
            "internal server error".into(),
        ),
        StoreError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            None,
            Some("store_unavailable"),
            "the document store cannot be reached; try again later".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_rag::store::Fault;

    #[test]
    fn a_failing_store_is_a_500_without_its_cause() {
        let (status, kind, _, code, message) = store(&StoreError::Backend(Fault::Vanished("document")));
        assert_eq!((status, kind, code), (StatusCode::INTERNAL_SERVER_ERROR, "server_error", Some("internal_error")));
        assert!(!message.contains("vanished"), "{message}");
        let (status, ..) = store(&StoreError::Unavailable(Fault::Closed));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn a_taken_conversation_id_is_a_conflict() {
        let (status, _, param, code, _) = store(&StoreError::Invalid(Invalid::ConversationExists("c1".into())));
        assert_eq!((status, param.as_deref(), code), (StatusCode::CONFLICT, Some("id"), Some("conversation_exists")));
    }
}
