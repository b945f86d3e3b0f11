//! Loaded models: lazy loading on first use, one worker thread each, reload after a failure.

use crate::backend::BackendLoader;
use crate::crash::CrashLog;
use crate::error::{EngineError, LoadError, Role};
use crate::handle::ModelHandle;
use crate::lifecycle::{self, KeepAlive, Resident};
use crate::registry::{ModelInfo, ModelKind, Registry};
pub use crate::settings::{EngineSettings, MAX_EMBED_INPUT};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

type Cell = Arc<tokio::sync::Mutex<Option<ModelHandle>>>;

/// When a loaded model was last used and when it may be unloaded.
#[derive(Debug, Clone, Copy)]
struct Usage {
    last_used: Instant,
    last_used_wall: SystemTime,
    /// `None`: stays until evicted or unloaded.
    expires: Option<Instant>,
}

/// A loaded model as `GET /models/loaded` shows it.
#[derive(Debug, Clone)]
pub struct ResidentModel {
    /// The handle.
    pub handle: ModelHandle,
    /// Estimated memory: file plus KV cache.
    pub memory_bytes: u64,
    /// The worker process's real resident memory (process isolation only).
    pub rss_bytes: Option<u64>,
    /// Last use.
    pub last_used: SystemTime,
    /// When it will be unloaded if unused (`None`: not by time).
    pub expires_in: Option<Duration>,
    /// Whether requests are running or waiting.
    pub busy: bool,
}

/// The registry plus the models loaded from it.
pub struct ModelManager {
    /// What the models folder holds now ([`ModelManager::refresh`] swaps in a new scan).
    registry: std::sync::RwLock<Arc<Registry>>,
    /// The models folder as the last refresh found it.
    watch: crate::live::FolderWatch,
    loader: Arc<dyn BackendLoader>,
    settings: EngineSettings,
    default_model: Option<String>,
    /// One cell per model id; its async lock serialises loading of that model.
    loaded: Mutex<HashMap<String, Cell>>,
    /// Use times of loaded models (std lock, never held across an await).
    usage: Mutex<HashMap<String, Usage>>,
    /// Held while deciding evictions and loading, so two loads cannot both claim the same room.
    admission: tokio::sync::Mutex<()>,
    /// Worker crashes per model, recorded by the worker processes' bridges as they happen.
    crashes: Arc<CrashLog>,
}

impl ModelManager {
    /// A manager over `registry` that loads models with `loader`.
    pub fn new(
        registry: Registry,
        loader: Arc<dyn BackendLoader>,
        settings: EngineSettings,
        default_model: Option<String>,
    ) -> Self {
        Self {
            registry: std::sync::RwLock::new(Arc::new(registry)),
            watch: crate::live::FolderWatch::default(),
            loader,
            settings,
            default_model,
            loaded: Mutex::new(HashMap::new()),
            usage: Mutex::new(HashMap::new()),
            admission: tokio::sync::Mutex::new(()),
            crashes: Arc::new(CrashLog::default()),
        }
    }

    /// The GPU devices the backend can use here, with their memory now.
    pub fn devices(&self) -> Vec<crate::gpu::Device> {
        self.loader.devices()
    }

    /// The compute backends of this build (`CPU, Vulkan`).
    pub fn backends(&self) -> String {
        self.loader.backends()
    }

    /// Worker crashes per model.
    pub fn crashes(&self) -> &CrashLog {
        &self.crashes
    }

    /// The grammar for a structured-output constraint: a JSON Schema is checked keyword by
    /// keyword and against [`crate::limits`] ([`crate::constraint::check_schema`]), then
    /// converted by the backend on a thread with a large stack ([`crate::deep`]), never on an
    /// async runtime thread; the grammar it gives is held to the same limits.
    ///
    /// # Errors
    /// [`EngineError::InvalidParam`] naming `response_format` or `grammar`.
    pub async fn grammar(&self, c: &crate::constraint::Constraint) -> Result<crate::constraint::Grammar, EngineError> {
        use crate::constraint::{check_gbnf, check_schema, Constraint};
        use crate::error::Invalid;
        let param = match c {
            Constraint::JsonSchema(s) => check_schema(s).map(|()| "response_format")?,
            Constraint::JsonObject => "response_format",
            Constraint::Gbnf(g) => check_gbnf(g).map(|()| "grammar")?,
        };
        let (loader, owned) = (self.loader.clone(), c.clone());
        let g = crate::deep::run("hearth-grammar", move || loader.grammar(&owned))
            .await?
            .map_err(|e| EngineError::invalid(param, Invalid::Grammar(e)))?;
        crate::grammar_shape::check(&g.gbnf).map_err(|l| EngineError::invalid(param, Invalid::Limit(l)))?;
        Ok(g)
    }

    /// The grammar that makes a model of `family` call the request's tools with arguments
    /// valid for their schemas: lazy under `auto` (text may come first; the grammar engages at
    /// the family's call opener), calls only under `required` or a named tool.
    ///
    /// # Errors
    /// [`EngineError::InvalidParam`] naming `tools[i].function.parameters`.
    pub async fn tool_grammar(
        &self,
        family: crate::tools::ToolFamily,
        req: &crate::tools::ToolRequest,
    ) -> Result<crate::constraint::Grammar, EngineError> {
        use crate::tools::ToolChoice;
        let mut args = Vec::new();
        for (i, t) in req.tools.iter().enumerate() {
            if matches!(&req.choice, ToolChoice::Named(n) if *n != t.name) {
                continue;
            }
            let c = crate::constraint::Constraint::JsonSchema(t.parameters.clone());
            let g = self.grammar(&c).await.map_err(|e| match e {
                EngineError::InvalidParam { reason, .. } => {
                    EngineError::invalid(format!("tools[{i}].function.parameters"), reason)
                }
                other => other,
            })?;
            args.push((t.name.clone(), g));
        }
        let lazy = req.choice == ToolChoice::Auto;
        let parallel = req.parallel && !matches!(req.choice, ToolChoice::Named(_));
        Ok(crate::tools::tool_grammar(family, &args, parallel, lazy))
    }

    /// The registry as it is now.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn set_registry(&self, r: Registry) {
        *self.registry.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(r);
    }

    /// Brings the registry up to date with its folder (called every second by the reaper;
    /// [`crate::live::FolderWatch`] decides what is served) and unloads idle models whose files
    /// are gone.
    pub async fn refresh(&self) {
        self.refresh_with(false).await;
    }

    /// [`ModelManager::refresh`] that serves new files at once: for a caller that knows they
    /// are complete (a pull that renamed them into place).
    pub async fn refresh_now(&self) {
        self.refresh_with(true).await;
    }

    async fn refresh_with(&self, trust: bool) {
        if let Some(next) = self.watch.look(&self.registry(), trust).await {
            self.set_registry(next);
        }
        self.unload_orphans(&self.registry()).await;
    }

    /// Unloads loaded models the registry no longer lists, once idle.
    async fn unload_orphans(&self, registry: &Registry) {
        for h in self.loaded() {
            if registry.resolve(&h.info.id).is_err() && !h.in_use() && self.remove(&h.info.id).await {
                tracing::info!(model = %h.info.id, "unloaded a model whose file is gone");
            }
        }
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

    /// The loaded models with their memory and use times, sorted by id.
    pub fn resident(&self) -> Vec<ResidentModel> {
        let usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let now = Instant::now();
        let mut out: Vec<ResidentModel> = self
            .loaded()
            .into_iter()
            .map(|h| {
                let u = usage.get(&h.info.id);
                ResidentModel {
                    memory_bytes: h.memory_bytes(),
                    rss_bytes: h.rss_bytes(),
                    last_used: u.map_or(SystemTime::UNIX_EPOCH, |u| u.last_used_wall),
                    expires_in: u.and_then(|u| u.expires).map(|e| e.saturating_duration_since(now)),
                    busy: h.in_use(),
                    handle: h,
                }
            })
            .collect();
        out.sort_by(|a, b| a.handle.info.id.cmp(&b.handle.info.id));
        out
    }

    /// Resolves `name` (empty = the default model) to a registry entry.
    ///
    /// # Errors
    /// [`EngineError::ModelNotFound`] or [`EngineError::NoDefaultModel`].
    pub fn resolve(&self, name: &str) -> Result<ModelInfo, EngineError> {
        let name = match (name.trim(), &self.default_model) {
            ("", Some(d)) => d.as_str(),
            ("", None) => return Err(EngineError::NoDefaultModel),
            (n, _) => n,
        };
        self.registry().resolve(name).cloned()
    }

    /// Every model that can be served, sorted by id.
    pub fn models(&self) -> Vec<ModelInfo> {
        self.registry().models().cloned().collect()
    }

    /// Unloads a model and removes its file (a link in the models folder: only the link).
    ///
    /// # Errors
    /// Not found, [`EngineError::Busy`] while it has running requests, or
    /// [`EngineError::DeleteFailed`] when the file cannot be removed.
    pub async fn delete(&self, name: &str) -> Result<(), EngineError> {
        let info = self.resolve(name)?;
        self.unload(&info.id).await?;
        for path in crate::registry::files_of(&info) {
            std::fs::remove_file(&path)
                .map_err(|e| EngineError::DeleteFailed { model: info.id.clone(), kind: e.kind() })?;
        }
        let without = self.registry().without(&info.id);
        self.set_registry(without);
        tracing::info!(model = %info.id, path = %info.path.display(), "model deleted");
        Ok(())
    }

    /// The handle of a causal model, loading it first if needed.
    ///
    /// # Errors
    /// Not found, wrong kind, or the model failed to load.
    pub async fn get(&self, name: &str) -> Result<ModelHandle, EngineError> {
        self.acquire(name, Some(ModelKind::Causal), KeepAlive::Default).await
    }

    /// The handle of an embedding model (or reranker), loading it first if needed.
    ///
    /// # Errors
    /// Not found, wrong kind, or the model failed to load.
    pub async fn get_embedding(&self, name: &str) -> Result<ModelHandle, EngineError> {
        self.acquire(name, Some(ModelKind::Embedding), KeepAlive::Default).await
    }

    /// The handle of any model, loading it first if needed.
    ///
    /// # Errors
    /// Not found, or the model failed to load.
    pub async fn get_any(&self, name: &str) -> Result<ModelHandle, EngineError> {
        self.acquire(name, None, KeepAlive::Default).await
    }

    /// The handle of a model of kind `want` (any if `None`), loading it first if needed (and
    /// unloading least recently used idle models to make room); it then stays loaded for
    /// `keep_alive` after this use.
    ///
    /// # Errors
    /// Not found, wrong kind, no room ([`EngineError::NoCapacity`]), or a failed load.
    pub async fn acquire(
        &self,
        name: &str,
        want: Option<ModelKind>,
        keep_alive: KeepAlive,
    ) -> Result<ModelHandle, EngineError> {
        self.acquire_placed(name, want, keep_alive, None).await
    }

    /// [`ModelManager::acquire`], with the model's layers placed as `gpu` says when given: a
    /// model loaded with another placement is loaded again if nothing uses it (else it is used
    /// as it is). A request's placement is a wish, as Ollama's `num_gpu` is: on a machine
    /// without a GPU it is ignored and the model runs on the CPU.
    ///
    /// # Errors
    /// As [`ModelManager::acquire`].
    pub async fn acquire_placed(
        &self,
        name: &str,
        want: Option<ModelKind>,
        keep_alive: KeepAlive,
        gpu: Option<crate::gpu::GpuLayers>,
    ) -> Result<ModelHandle, EngineError> {
        let info = self.resolve(name)?;
        check_kind(&info, want)?;
        let gpu = gpu.filter(|_| !self.devices().is_empty());
        let cell = {
            let mut map = self.loaded.lock().map_err(|_| EngineError::Unavailable { model: info.id.clone() })?;
            map.entry(info.id.clone()).or_default().clone()
        };
        let mut slot = cell.lock().await;
        if let Some(h) = slot.as_ref() {
            let replace = gpu.is_some_and(|g| g != h.gpu_layers()) && h.is_alive() && !h.in_use();
            if h.is_alive() && !replace {
                self.touch(&info.id, keep_alive);
                return Ok(h.clone());
            }
            if replace {
                tracing::info!(model = %info.id, from = %h.gpu_layers(), to = ?gpu, "loading the model again with the placement asked for");
                slot.take();
            } else {
                tracing::warn!(model = %info.id, "model worker had stopped; reloading");
            }
        }
        if let Some((crashes, left)) = self.crashes.backoff(&info.id) {
            let retry_after = left.as_secs().max(1);
            return Err(EngineError::CrashLoop { model: info.id.clone(), crashes, retry_after });
        }
        let _room = self.admission.lock().await;
        let available = match self.settings.memory_budget {
            0 => lifecycle::available_memory(),
            budget => Some(budget),
        };
        let mut spec = self.settings.load_spec(info.clone(), available);
        if let Some(g) = gpu {
            spec.gpu.layers = g;
        }
        let need = spec.memory_bytes();
        self.make_room(&info.id, need).await?;
        let (loader, settings, crashes) = (self.loader.clone(), self.settings.clone(), self.crashes.clone());
        let handle =
            tokio::task::spawn_blocking(move || ModelHandle::start_watched(loader, spec, &settings, Some(crashes)))
                .await
                .map_err(|e| {
                    tracing::error!(model = %info.id, error = %e, "model load task failed");
                    EngineError::ModelLoad { model: info.id.clone(), reason: LoadError::WorkerDied }
                })??;
        self.crashes.loaded(&info.id);
        *slot = Some(handle.clone());
        self.touch(&info.id, keep_alive);
        Ok(handle)
    }

    /// Unloads least recently used idle models until `need` more bytes (and one more model)
    /// fit.
    async fn make_room(&self, incoming_id: &str, need: u64) -> Result<(), EngineError> {
        let usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let resident: Vec<Resident> = self
            .loaded()
            .into_iter()
            .filter(|h| h.info.id != incoming_id)
            .map(|h| Resident {
                id: h.info.id.clone(),
                memory: h.budget_bytes(),
                last_used: usage.get(&h.info.id).map_or_else(Instant::now, |u| u.last_used),
                busy: h.in_use(),
            })
            .collect();
        let s = &self.settings;
        let out = lifecycle::evictions(&resident, need, s.max_loaded_models, s.memory_budget)
            .map_err(|reason| EngineError::NoCapacity { model: incoming_id.to_string(), reason })?;
        for id in out {
            tracing::info!(model = %id, for_model = %incoming_id, "unloading the least recently used model to make room");
            self.remove(&id).await;
        }
        Ok(())
    }

    fn touch(&self, id: &str, keep_alive: KeepAlive) {
        let now = Instant::now();
        let usage = Usage {
            last_used: now,
            last_used_wall: SystemTime::now(),
            expires: keep_alive.expiry(now, self.settings.idle_unload),
        };
        self.usage.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_string(), usage);
    }

    /// Drops a model's handle; its worker finishes what it holds, then frees the model.
    pub(crate) async fn remove(&self, id: &str) -> bool {
        let cell = self.loaded.lock().ok().and_then(|m| m.get(id).cloned());
        self.usage.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
        match cell {
            Some(c) => c.lock().await.take().is_some(),
            None => false,
        }
    }

    /// Unloads a model now. Returns whether it was loaded.
    ///
    /// # Errors
    /// Not found, or [`EngineError::Busy`] while it has running or waiting requests.
    pub async fn unload(&self, name: &str) -> Result<bool, EngineError> {
        let id = self.resolve(name)?.id;
        let _room = self.admission.lock().await;
        if let Some(h) = self.loaded().into_iter().find(|h| h.info.id == id) {
            if h.in_use() {
                return Err(EngineError::Busy { model: id });
            }
        }
        let was = self.remove(&id).await;
        if was {
            tracing::info!(model = %id, "model unloaded");
        }
        Ok(was)
    }

    /// Unloads every model and waits (up to `grace`) for their workers to end, so that no
    /// worker process outlives the server.
    pub async fn shutdown(&self, grace: Duration) {
        let workers: Vec<_> = self.loaded().iter().map(|h| h.stats.clone()).collect();
        let cells: Vec<Cell> = self.loaded.lock().map(|m| m.values().cloned().collect()).unwrap_or_default();
        for c in cells {
            c.lock().await.take();
        }
        let deadline = Instant::now() + grace;
        while workers.iter().any(|w| !w.dead.load(std::sync::atomic::Ordering::Acquire)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Unloads idle models whose keep-alive has run out; returns their ids.
    pub async fn unload_expired(&self) -> Vec<String> {
        let now = Instant::now();
        let expired: Vec<String> = {
            let usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
            usage.iter().filter(|(_, u)| u.expires.is_some_and(|e| e <= now)).map(|(id, _)| id.clone()).collect()
        };
        let mut out = Vec::new();
        for id in expired {
            let idle = self.loaded().into_iter().find(|h| h.info.id == id).is_some_and(|h| !h.in_use());
            if idle && self.remove(&id).await {
                tracing::info!(model = %id, "model unloaded after its keep-alive");
                out.push(id);
            }
        }
        out
    }

    /// Runs [`ModelManager::unload_expired`] and [`ModelManager::refresh`] every `every` until
    /// the manager is dropped.
    pub fn spawn_reaper(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(m) = weak.upgrade() else { return };
                m.unload_expired().await;
                m.refresh().await;
            }
        });
    }
}

/// Whether `info` is the kind of model a request wants (`None`: either).
///
/// # Errors
/// [`EngineError::WrongModelKind`].
pub fn check_kind(info: &ModelInfo, want: Option<ModelKind>) -> Result<(), EngineError> {
    match (want, info.kind) {
        (Some(ModelKind::Causal), ModelKind::Embedding) => {
            Err(EngineError::wrong_kind(Role::Embedder, Role::Generator))
        }
        (Some(ModelKind::Embedding), ModelKind::Causal) => {
            Err(EngineError::wrong_kind(Role::Generator, Role::Embedder))
        }
        _ => Ok(()),
    }
}
