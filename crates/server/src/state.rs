//! Shared state of the HTTP layer.

use crate::auth::{AuthConfig, Keys};
use crate::shutdown::StopSignal;
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
    /// Longest a whole request may take (a stream is ended with an error event after it).
    pub request_timeout: Duration,
    /// Largest request body accepted; larger is 413.
    pub max_body_bytes: usize,
    /// Connections open at once; beyond it new ones wait to be accepted.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, from the connection's start or the end
    /// of its previous response (so it also closes idle keep-alive connections).
    pub header_timeout: Duration,
    /// With keys configured, the fraction of each shared pool (admission permits, upload
    /// slots, ingestion queue places) one non-admin key may hold.
    pub key_share: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 256,
            queue_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(600),
            max_body_bytes: 8 << 20,
            max_connections: 1024,
            header_timeout: Duration::from_secs(30),
            key_share: 0.5,
        }
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
    /// API keys and their rate limits (none: open).
    pub keys: Keys,
    /// Origins allowed to call from a browser (CORS); empty = same origin only.
    pub cors_origins: Arc<Vec<String>>,
    /// Turns true when running requests must end (shutdown grace over).
    pub stop: StopSignal,
    /// Log prompt text at debug level (`--log-prompts`); off: prompts are private.
    pub log_prompts: bool,
    /// Retrieval (collections, documents, search), when enabled.
    pub rag: Option<Arc<crate::rag::Rag>>,
    /// Conversations kept for the UI and other clients (the same store as retrieval's).
    pub conversations: Option<Arc<dyn hearth_rag::conversation::ConversationStore>>,
    /// The browser UI is served at `/` (off with `--no-ui`).
    pub ui: bool,
    /// The hub `POST /api/pull` fetches models from (`None`: pulling is off).
    pub hub: Option<hearth_hub::HubSettings>,
    /// Pull jobs of `/models/pull`.
    pub pulls: Arc<crate::pull::jobs::Pulls>,
    /// What each key holds of the shared pools.
    pub shares: FairShares,
}

/// Each shared pool's [`crate::share::Shares`].
#[derive(Debug, Clone)]
pub struct FairShares {
    /// Admission permits.
    pub requests: Arc<crate::share::Shares>,
    /// Upload slots.
    pub uploads: Arc<crate::share::Shares>,
    /// Ingestion queue places.
    pub places: Arc<crate::share::Shares>,
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
        let stop = crate::shutdown::never();
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
                requests: crate::share::Shares::new(limits.key_share),
                uploads: crate::share::Shares::new(limits.key_share),
                places: crate::share::Shares::new(limits.key_share),
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
    pub fn with_rag(mut self, rag: crate::rag::Rag) -> Self {
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
