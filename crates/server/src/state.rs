//! Shared state of the HTTP layer.

use hearth_engine::ModelManager;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Admission limits applied at the edge, before a request reaches a model's queue.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Generation requests in flight at once (running or waiting); beyond it, 429.
    pub max_concurrent_requests: usize,
    /// Longest a request may wait for a free sequence before it gets 503.
    pub queue_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_concurrent_requests: 256, queue_timeout: Duration::from_secs(60) }
    }
}

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Registry and loaded models.
    pub models: Arc<ModelManager>,
    /// Permits for generation requests; one travels with each request until its stream ends.
    pub permits: Arc<Semaphore>,
    /// Limits in force.
    pub limits: Limits,
}

impl AppState {
    /// State over `models` with the given limits.
    pub fn new(models: Arc<ModelManager>, limits: Limits) -> Self {
        Self { models, permits: Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1))), limits }
    }
}
