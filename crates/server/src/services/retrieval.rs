//! Retrieval's state on this server: the store, the settings, the ingestion jobs and queue,
//! and the upload slots (handlers are in `crate::retrieval`).

use crate::http::error::ApiError;
use crate::http::refused::Busy;
use crate::retrieval::schema::Job;
use hearth_rag::chunk::ChunkSpec;
use hearth_rag::parse::{ParseError, ParseLimits};
use hearth_rag::store::VectorStore;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// Jobs remembered for `GET /jobs/{id}`; older finished ones are forgotten.
const MAX_JOBS: usize = 1000;
/// Uploads read and parsed at once (each holds up to the upload limit in memory); one more is
/// a 429.
pub const MAX_CONCURRENT_UPLOADS: usize = 4;
/// Ingestion jobs queued or running on this server; an upload that would add past it is a 429.
pub const MAX_PENDING_JOBS: usize = 256;
/// Jobs chunking and embedding at once; the others wait, `queued`.
pub const INGEST_WORKERS: usize = 2;

/// The largest upload when none is configured.
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 32 << 20;

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
    /// Largest upload: all files of one request together ([`DEFAULT_MAX_UPLOAD_BYTES`] unless
    /// configured).
    pub max_upload_bytes: usize,
    jobs: Mutex<Jobs>,
    uploads: Arc<tokio::sync::Semaphore>,
    ingesting: Arc<tokio::sync::Semaphore>,
}

#[derive(Default)]
struct Jobs {
    by_id: HashMap<String, Job>,
    order: VecDeque<String>,
    /// Places in the queue promised to uploads whose jobs are not registered yet.
    reserved: usize,
}

impl Jobs {
    /// Jobs queued or running, and places promised to jobs about to be.
    fn pending(&self) -> usize {
        self.by_id.values().filter(|j| matches!(j.status, "queued" | "running")).count() + self.reserved
    }
}

impl Jobs {
    /// Past [`MAX_JOBS`], forgets the oldest finished jobs (their records stay in the store);
    /// unfinished ones are kept, so their progress and outcome are still recorded.
    fn forget_old(&mut self) {
        let mut excess = self.order.len().saturating_sub(MAX_JOBS);
        if excess == 0 {
            return;
        }
        let by_id = &mut self.by_id;
        self.order.retain(|id| {
            let finished = by_id.get(id).is_none_or(|j| matches!(j.status, "done" | "failed"));
            if excess > 0 && finished {
                by_id.remove(id);
                excess -= 1;
                return false;
            }
            true
        });
    }
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
            uploads: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_UPLOADS)),
            ingesting: Arc::new(tokio::sync::Semaphore::new(INGEST_WORKERS)),
        }
    }

    /// Admits one upload: a slot among [`MAX_CONCURRENT_UPLOADS`], and room for a job in the
    /// ingestion queue.
    ///
    /// # Errors
    /// 429 when all upload slots are taken or the queue is full.
    pub fn admit_upload(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        let permit = (self.uploads.clone().try_acquire_owned())
            .map_err(|_| ApiError::Busy(Busy::Uploads { limit: MAX_CONCURRENT_UPLOADS }))?;
        self.room_for(1)?;
        Ok(permit)
    }

    /// Whether `n` more jobs fit in the ingestion queue now (a check, not a promise: see
    /// [`Rag::reserve`]).
    ///
    /// # Errors
    /// 429 when they do not.
    pub fn room_for(&self, n: usize) -> Result<(), ApiError> {
        let pending = self.jobs.lock().unwrap_or_else(PoisonError::into_inner).pending();
        if pending + n > MAX_PENDING_JOBS {
            return Err(ApiError::Busy(Busy::IngestionQueue { pending }));
        }
        Ok(())
    }

    /// Takes `n` places in the ingestion queue, checked and taken under one lock so that
    /// concurrent uploads cannot pass [`MAX_PENDING_JOBS`] together; places not used by
    /// [`Reservation::new_job`] are given back when the reservation is dropped.
    ///
    /// # Errors
    /// 429 when they do not fit.
    pub fn reserve(&self, n: usize) -> Result<Reservation<'_>, ApiError> {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let pending = jobs.pending();
        if pending + n > MAX_PENDING_JOBS {
            return Err(ApiError::Busy(Busy::IngestionQueue { pending }));
        }
        jobs.reserved += n;
        Ok(Reservation { rag: self, left: n })
    }

    /// Waits for one of the [`INGEST_WORKERS`] slots.
    pub async fn ingest_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.ingesting.clone().acquire_owned().await.ok()
    }

    /// Registers a queued job of `owner`'s (recorded in the store too), in a place `reserved`
    /// or not.
    async fn register(&self, owner: &str, collection: &str, document: &str, reserved: bool) -> Job {
        let job = Job {
            id: crate::http::ids::new_id("job"),
            owner: owner.to_string(),
            status: "queued",
            collection: collection.to_string(),
            document: document.to_string(),
            chunks_done: 0,
            chunks_total: 0,
            result: None,
            error: None,
        };
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            jobs.reserved -= usize::from(reserved);
            jobs.order.push_back(job.id.clone());
            jobs.by_id.insert(job.id.clone(), job.clone());
            jobs.forget_old();
        }
        self.record(&job).await;
        job
    }

    /// Updates a job, here and in the store.
    pub async fn update_job(&self, id: &str, f: impl FnOnce(&mut Job)) {
        let job = {
            let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(j) = jobs.by_id.get_mut(id) else { return };
            f(j);
            j.clone()
        };
        self.record(&job).await;
    }

    /// Writes a job's state to the store, so that every server sharing it can report the job
    /// (a failure is logged; the job itself goes on).
    async fn record(&self, job: &Job) {
        let Ok(state) = serde_json::to_value(job) else { return };
        let (store, id) = (self.store.clone(), job.id.clone());
        match tokio::task::spawn_blocking(move || store.put_job(&id, &state)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(job = %job.id, error = %e, "could not record the job's state"),
            Err(e) => tracing::warn!(job = %job.id, error = %e, "could not record the job's state"),
        }
    }

    /// A job by id: this server's, or one recorded in the store by another server (or before
    /// a restart). A recorded job that was not finished is reported failed when no server can
    /// still be running it: the store is not shared, or nothing was recorded for
    /// [`STALE_JOB_SECS`].
    ///
    /// # Errors
    /// Store failures.
    pub async fn job(&self, id: &str) -> Result<Option<serde_json::Value>, ApiError> {
        if let Some(j) = self.jobs.lock().unwrap_or_else(PoisonError::into_inner).by_id.get(id) {
            return Ok(serde_json::to_value(j).ok());
        }
        let (store, key) = (self.store.clone(), id.to_string());
        let shared = self.store.shared();
        let Some((mut state, updated)) = blocking(move || store.job(&key)).await? else { return Ok(None) };
        let unfinished = matches!(state["status"].as_str(), Some("queued" | "running"));
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if unfinished && (!shared || now.saturating_sub(updated) > STALE_JOB_SECS) {
            state["status"] = "failed".into();
            state["error"] =
                "interrupted: the server running this job stopped before it finished; upload the file again".into();
        }
        Ok(Some(state))
    }
}

/// Places taken in the ingestion queue by [`Rag::reserve`].
pub struct Reservation<'a> {
    rag: &'a Rag,
    left: usize,
}

impl Reservation<'_> {
    /// Registers a queued job of `owner`'s in one of the places (recorded in the store too);
    /// past them, the job still registers (the queue's bound was checked for the request).
    pub async fn new_job(&mut self, owner: &str, collection: &str, document: &str) -> Job {
        let reserved = self.left > 0;
        self.left -= usize::from(reserved);
        self.rag.register(owner, collection, document, reserved).await
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut jobs = self.rag.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.reserved -= self.left;
    }
}

/// A job recorded in a shared store with no progress for this long is taken as abandoned.
pub const STALE_JOB_SECS: u64 = 600;

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> Self {
        ApiError::Document(e)
    }
}

/// Runs store work off the async runtime.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, hearth_rag::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f).await.map_err(|_| ApiError::Internal)??)
}

/// by its stored name.
pub async fn blocking_named<T: Send + 'static>(
    named: &str,
    f: impl FnOnce() -> Result<T, hearth_rag::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let r = tokio::task::spawn_blocking(f).await.map_err(|_| ApiError::Internal)?;
    r.map_err(|e| match e {
        hearth_rag::store::StoreError::NoCollection(_) => {
            hearth_rag::store::StoreError::NoCollection(named.to_string()).into()
        }
        hearth_rag::store::StoreError::CollectionExists(_) => {
            hearth_rag::store::StoreError::CollectionExists(named.to_string()).into()
        }
        e => e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn rag(dir: &std::path::Path) -> Rag {
        let store = hearth_rag::sqlite::SqliteStore::open(&dir.join("jobs.sqlite")).unwrap();
        Rag::new(Arc::new(store), "m".into(), 1 << 20)
    }

    #[tokio::test]
    async fn a_full_ingestion_queue_refuses_uploads_until_a_job_finishes() {
        let dir = std::env::temp_dir().join(format!("hearth-queue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rag = rag(&dir);
        let mut first = None;
        let mut places = rag.reserve(MAX_PENDING_JOBS).unwrap();
        for i in 0..MAX_PENDING_JOBS {
            let job = places.new_job("alice", "c", &format!("d{i}")).await;
            first.get_or_insert(job.id);
        }
        drop(places);
        let busy = |r: Result<(), ApiError>| {
            matches!(r, Err(ApiError::Busy(Busy::IngestionQueue { pending: MAX_PENDING_JOBS })))
        };
        assert!(busy(rag.room_for(1)), "the queue is full");
        assert!(busy(rag.admit_upload().map(drop)), "an upload is refused before it is read");
        assert_eq!(rag.admit_upload().err().map(|e| e.parts().0), Some(StatusCode::TOO_MANY_REQUESTS));
        rag.update_job(&first.unwrap(), |j| j.status = "done").await;
        assert!(rag.room_for(1).is_ok() && rag.admit_upload().is_ok(), "room again once one is done");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn places_reserved_by_concurrent_uploads_count_until_used_or_dropped() {
        let dir = std::env::temp_dir().join(format!("hearth-reserve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rag = rag(&dir);
        let first = rag.reserve(MAX_PENDING_JOBS - 10).unwrap();
        // Before the fix both passed a check of the registered jobs alone and the queue
        // overshot: the second upload's 20 do not fit beside the first's promised places.
        assert!(rag.reserve(20).is_err(), "promised places count");
        let mut second = rag.reserve(10).unwrap();
        assert!(rag.room_for(1).is_err(), "the queue is full of promises");
        second.new_job("bob", "c", "d").await;
        drop(second);
        assert!(rag.room_for(10).is_err() && rag.room_for(9).is_ok(), "one job registered, 9 places given back");
        drop(first);
        assert!(rag.reserve(MAX_PENDING_JOBS - 1).is_ok(), "only the registered job is left");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
