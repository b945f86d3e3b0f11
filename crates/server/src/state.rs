//! Shared state of the HTTP layer.

use hearth_engine::ModelManager;
use std::sync::Arc;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Registry and loaded models.
    pub models: Arc<ModelManager>,
}
