//! Shared state of the HTTP layer.

use crate::http::auth::{AuthConfig, Keys};
use crate::http::limits::Limits;
use crate::http::stop::StopSignal;
use hearth_engine::ModelManager;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Registry and loaded models.
    pub models: Arc<ModelManager>,
    /// Permits for generation requests; one travels with each request until its stream ends.
    pub permits: Arc<Semaphore>,
    /// Limits in force.
    pub limits: Limits,
    /// API keys and their rate limits (none: open).
    pub keys: Keys,
    /// Origins allowed to call from a browser (CORS); empty = same origin only.
    pub cors_origins: Arc<Vec<String>>,
    /// Turns true when running requests must end (shutdown grace over).
    pub stop: StopSignal,
    /// Log prompt text at debug level (`--log-prompts`); off: prompts are private.
    pub log_prompts: bool,
    /// Retrieval (collections, documents, search), when enabled.
    pub rag: Option<Arc<crate::services::retrieval::Rag>>,
    /// Conversations kept for the UI and other clients (the same store as retrieval's).
    pub conversations: Option<Arc<dyn hearth_rag::conversation::ConversationStore>>,
    /// The browser UI is served at `/` (off with `--no-ui`).
    pub ui: bool,
    /// The hub `POST /api/pull` fetches models from (`None`: pulling is off).
    pub hub: Option<hearth_hub::HubSettings>,
    /// Pull jobs of `/models/pull`.
    pub pulls: Arc<crate::services::pulls::Pulls>,
    /// What each key holds of the shared pools.
    pub shares: FairShares,
}

/// Each shared pool's [`crate::services::share::Shares`].
#[derive(Debug, Clone)]
pub struct FairShares {
    /// Admission permits.
    pub requests: Arc<crate::services::share::Shares>,
    /// Upload slots.
    pub uploads: Arc<crate::services::share::Shares>,
    /// Ingestion queue places.
    pub places: Arc<crate::services::share::Shares>,
}

impl AppState {
    /// Pulls models from `hub` (`POST /api/pull`, `/models/pull`).
    pub fn with_hub(mut self, hub: hearth_hub::HubSettings) -> Self {
        self.hub = Some(hub);
        self
    }

    /// State over `models` with the given limits.
    pub fn new(models: Arc<ModelManager>, limits: Limits) -> Self {
        let permits = Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1)));
        let cors_origins = Arc::new(Vec::new());
        let stop = crate::http::stop::never();
        Self {
            models,
            permits,
            limits,
            keys: Keys::default(),
            cors_origins,
            stop,
            log_prompts: false,
            rag: None,
            conversations: None,
            ui: true,
            hub: None,
            pulls: Arc::default(),
            shares: FairShares {
                requests: crate::services::share::Shares::new(limits.key_share),
                uploads: crate::services::share::Shares::new(limits.key_share),
                places: crate::services::share::Shares::new(limits.key_share),
            },
        }
    }

    /// The same state requiring the keys of `auth`.
    pub fn with_auth(mut self, auth: AuthConfig) -> Self {
        self.keys = Keys::new(auth);
        self
    }

    /// The same state with retrieval over `rag` (its store keeps conversations too, unless
    /// another store was given).
    pub fn with_rag(mut self, rag: crate::services::retrieval::Rag) -> Self {
        if self.conversations.is_none() {
            self.conversations = Some(rag.store.clone());
        }
        self.rag = Some(Arc::new(rag));
        self
    }

    /// The same state keeping conversations in `store`.
    pub fn with_conversations(mut self, store: Arc<dyn hearth_rag::conversation::ConversationStore>) -> Self {
        self.conversations = Some(store);
        self
    }

    /// The same state with the browser UI on or off.
    pub fn with_ui(mut self, on: bool) -> Self {
        self.ui = on;
        self
    }

    /// The same state logging prompt text at debug level.
    pub fn with_log_prompts(mut self, on: bool) -> Self {
        self.log_prompts = on;
        self
    }

    /// The same state with running requests ended when `stop` turns true.
    pub fn with_stop(mut self, stop: StopSignal) -> Self {
        self.stop = stop;
        self
    }

    /// The same state allowing browser calls from `origins` (`*` for any).
    pub fn with_cors(mut self, origins: Vec<String>) -> Self {
        self.cors_origins = Arc::new(origins);
        self
    }
}
