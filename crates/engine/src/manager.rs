//! Loaded models: lazy loading on first use, one worker thread each, reload after a failure.

use crate::backend::{BackendInfo, BackendLoader, LoadSpec};
use crate::error::EngineError;
use crate::registry::{ModelInfo, ModelKind, Registry};
use crate::request::{Event, GenerateRequest};
use crate::sampling::SamplingDefaults;
use crate::template::{ChatTemplate, TemplateMessage};
use crate::worker::{self, Command, WorkerConfig, WorkerStats};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Engine settings, validated by the binary's config module.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Context window per sequence; 0 = the model's training context, capped at 4096.
    pub ctx_size: u32,
    /// Sequences decoded together per model.
    pub parallel: usize,
    /// KV cache cells shared by a model's sequences; 0 = context size x parallel (every
    /// sequence can always fill its window). Smaller saves memory: a request whose prompt plus
    /// max_tokens does not fit next to the running ones waits.
    pub kv_size: u32,
    /// Most tokens per decode call.
    pub batch_size: usize,
    /// CPU threads for llama.cpp.
    pub threads: usize,
    /// Requests that may wait for a model's worker before new ones get `Overloaded`.
    pub max_queue: usize,
    /// Server-wide cap on generated tokens per request.
    pub max_tokens_cap: Option<u32>,
    /// Prompt tokens evaluated per step while other sequences are decoding (chunked prefill).
    pub prefill_chunk: usize,
    /// Sampling defaults for fields a request omits.
    pub sampling: SamplingDefaults,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            ctx_size: 0,
            parallel: 4,
            kv_size: 0,
            batch_size: 512,
            threads: 2,
            max_queue: 64,
            max_tokens_cap: None,
            prefill_chunk: 128,
            sampling: SamplingDefaults::default(),
        }
    }
}

/// Capacity of one sequence's event channel; a client that stops reading stalls only its own
/// sequence once this many events are unread.
const EVENT_BUFFER: usize = 64;

/// A handle on a loaded model's worker. Cheap to clone.
#[derive(Clone)]
pub struct ModelHandle {
    /// What the registry knows.
    pub info: Arc<ModelInfo>,
    /// What the loaded model reported.
    pub loaded: Arc<BackendInfo>,
    template: Arc<ChatTemplate>,
    /// Bounded queue into the worker: full means overloaded.
    tx: SyncSender<Command>,
    /// Counters shared with the worker.
    pub stats: Arc<WorkerStats>,
}

impl std::fmt::Debug for ModelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelHandle").field("id", &self.info.id).finish_non_exhaustive()
    }
}

impl ModelHandle {
    /// Whether the worker is still running.
    pub fn is_alive(&self) -> bool {
        !self.stats.dead.load(Ordering::Acquire)
    }

    /// Renders a conversation with the model's chat template.
    ///
    /// # Errors
    /// [`EngineError::TemplateRejected`] when the template refuses the conversation.
    pub fn render_chat(&self, messages: &[TemplateMessage]) -> Result<String, EngineError> {
        self.template.render(messages, true, &self.loaded.bos, &self.loaded.eos)
    }

    /// Queues a generation request; events arrive on the returned receiver. Dropping the
    /// receiver cancels the request within one decode step.
    ///
    /// # Errors
    /// [`EngineError::Overloaded`] when the queue is full, [`EngineError::Unavailable`] when
    /// the worker is gone.
    pub fn submit(&self, req: GenerateRequest) -> Result<mpsc::Receiver<Event>, EngineError> {
        let (events, rx) = mpsc::channel(EVENT_BUFFER);
        self.stats.waiting.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(Command::Generate { req, events }) {
            Ok(()) => Ok(rx),
            Err(e) => {
                self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
                Err(match e {
                    TrySendError::Full(_) => EngineError::Overloaded { model: self.info.id.clone() },
                    TrySendError::Disconnected(_) => EngineError::Unavailable { model: self.info.id.clone() },
                })
            }
        }
    }
}

type Cell = Arc<tokio::sync::Mutex<Option<ModelHandle>>>;

/// The registry plus the models loaded from it.
pub struct ModelManager {
    registry: Registry,
    loader: Arc<dyn BackendLoader>,
    settings: EngineSettings,
    default_model: Option<String>,
    /// One cell per model id; the async lock serialises loading of that model only.
    loaded: Mutex<HashMap<String, Cell>>,
}

impl ModelManager {
    /// A manager over `registry` that loads models with `loader`.
    pub fn new(
        registry: Registry,
        loader: Arc<dyn BackendLoader>,
        settings: EngineSettings,
        default_model: Option<String>,
    ) -> Self {
        Self { registry, loader, settings, default_model, loaded: Mutex::new(HashMap::new()) }
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The default model's name, if configured.
    pub fn default_model(&self) -> Option<&str> {
        self.default_model.as_deref()
    }

    /// Settings in force.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Handles of the models loaded now.
    pub fn loaded(&self) -> Vec<ModelHandle> {
        let cells: Vec<Cell> = self.loaded.lock().map(|m| m.values().cloned().collect()).unwrap_or_default();
        cells.iter().filter_map(|c| c.try_lock().ok().and_then(|g| g.clone())).filter(|h| h.is_alive()).collect()
    }

    /// Resolves `name` (empty = the default model) to a registry entry.
    ///
    /// # Errors
    /// [`EngineError::ModelNotFound`] or [`EngineError::NoDefaultModel`].
    pub fn resolve(&self, name: &str) -> Result<&ModelInfo, EngineError> {
        let name = match (name.trim(), &self.default_model) {
            ("", Some(d)) => d.as_str(),
            ("", None) => return Err(EngineError::NoDefaultModel),
            (n, _) => n,
        };
        self.registry.resolve(name)
    }

    /// The handle of a causal model, loading it first if needed.
    ///
    /// # Errors
    /// Not found, wrong kind, or the model failed to load.
    pub async fn get(&self, name: &str) -> Result<ModelHandle, EngineError> {
        let info = self.resolve(name)?.clone();
        if info.kind != ModelKind::Causal {
            return Err(EngineError::WrongModelKind(format!(
                "model `{}` is an embedding model and cannot generate text",
                info.id
            )));
        }
        let cell = {
            let mut map = self.loaded.lock().map_err(|_| EngineError::Unavailable { model: info.id.clone() })?;
            map.entry(info.id.clone()).or_default().clone()
        };
        let mut slot = cell.lock().await;
        if let Some(h) = slot.as_ref() {
            if h.is_alive() {
                return Ok(h.clone());
            }
            tracing::warn!(model = %info.id, "model worker had stopped; reloading");
        }
        let handle = self.load(info).await?;
        *slot = Some(handle.clone());
        Ok(handle)
    }

    fn spec(&self, model: ModelInfo) -> LoadSpec {
        let ctx = if self.settings.ctx_size == 0 {
            model.n_ctx_train.min(4096)
        } else {
            self.settings.ctx_size.min(model.n_ctx_train)
        };
        let n_ctx = ctx.max(16);
        let n_slots = self.settings.parallel.max(1);
        let n_kv = match self.settings.kv_size {
            0 => n_ctx.saturating_mul(n_slots as u32),
            kv => kv.max(n_ctx),
        };
        LoadSpec {
            model,
            n_ctx,
            n_kv,
            n_slots,
            n_batch: self.settings.batch_size.max(1),
            threads: self.settings.threads.max(1),
        }
    }

    async fn load(&self, info: ModelInfo) -> Result<ModelHandle, EngineError> {
        let id = info.id.clone();
        let spec = self.spec(info.clone());
        let (tx, rx) = sync_channel(self.settings.max_queue.max(1));
        let stats = Arc::new(WorkerStats::default());
        let (ready_tx, ready_rx) = oneshot::channel::<Result<BackendInfo, String>>();
        let loader = self.loader.clone();
        let worker_stats = stats.clone();
        let cfg =
            WorkerConfig { max_tokens_cap: self.settings.max_tokens_cap, prefill_chunk: self.settings.prefill_chunk };
        let started = std::time::Instant::now();
        std::thread::Builder::new()
            .name(format!("hearth-model-{id}"))
            .spawn(move || {
                let mut ready = Some(ready_tx);
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    loader.run(&spec, &mut |backend| {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Ok(backend.info()));
                        }
                        worker::run(backend, &rx, &worker_stats, cfg);
                    })
                }));
                match result {
                    Ok(Ok(())) => tracing::info!(model = %spec.model.id, "model worker stopped"),
                    Ok(Err(msg)) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Err(msg));
                        }
                    }
                    Err(_) => tracing::error!(model = %spec.model.id, "model worker panicked; it will be reloaded on next use"),
                }
                worker_stats.dead.store(true, Ordering::Release);
            })
            .map_err(|e| EngineError::ModelLoad { model: id.clone(), reason: e.to_string() })?;
        let loaded = match ready_rx.await {
            Ok(Ok(b)) => b,
            Ok(Err(reason)) => return Err(EngineError::ModelLoad { model: id, reason }),
            Err(_) => return Err(EngineError::ModelLoad { model: id, reason: "the worker died while loading".into() }),
        };
        tracing::info!(model = %id, n_ctx = loaded.n_ctx, slots = loaded.n_slots, secs = started.elapsed().as_secs_f64(), "model loaded");
        let template = Arc::new(ChatTemplate::new(&info.template, &info.arch));
        Ok(ModelHandle { info: Arc::new(info), loaded: Arc::new(loaded), template, tx, stats })
    }
}
