//! A loaded model: its worker thread and the handle through which requests reach it.

use crate::backend::{BackendInfo, BackendLoader, LoadSpec, Pooling, Token};
use crate::command::Command;
use crate::crash::CrashLog;
use crate::embed::{EmbedOutput, EmbedRequest, ValidEmbedRequest};
use crate::error::{EngineError, Invalid, LoadError, Role};
use crate::launch::{launch, CommandTx};
use crate::registry::{ModelInfo, ModelKind};
use crate::request::{Event, GenerateRequest, RenderedPrompt, ValidGenerateRequest};
use crate::settings::EngineSettings;
use crate::template::{ChatTemplate, TemplateMessage};
use crate::tokenize_pool::{PoolError, TokenizePool};
use crate::tokenizer::Tokenizer;
use crate::tools::Tool;
use crate::worker::{WorkerConfig, WorkerStats};
use std::sync::atomic::Ordering;
use std::sync::mpsc::TrySendError;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Capacity of one sequence's event channel; a client that stops reading stalls only its own
/// sequence once this many events are unread.
pub(crate) const EVENT_BUFFER: usize = 64;

/// Channel room beyond the work queue, for pings.
const PING_ROOM: usize = 64;

/// Text up to this many bytes is tokenized on the calling task (well under a millisecond);
/// longer text on the model's tokenizing threads, so the async runtime keeps running.
const INLINE_TOKENIZE_BYTES: usize = 4096;

/// Long texts that may wait for a model's tokenizing threads before more are refused.
const TOKENIZE_QUEUE: usize = 64;

/// A handle on a loaded model's worker. Cheap to clone; the worker stops when the last clone
/// is dropped and its queued work is done.
#[derive(Clone)]
pub struct ModelHandle {
    /// What the registry knows.
    pub info: Arc<ModelInfo>,
    /// What the loaded model reported.
    pub loaded: Arc<BackendInfo>,
    template: Arc<ChatTemplate>,
    /// The model's vocabulary, for tokenizing on the request's side.
    tokenizer: Tokenizer,
    /// Threads that tokenize long texts (one per two cores), behind a bounded queue.
    pool: Arc<TokenizePool>,
    /// Server-wide cap on generated tokens.
    max_tokens_cap: Option<u32>,
    /// Into the worker; bounded (work by `max_queue`, plus room for pings).
    tx: CommandTx,
    /// Work requests that may wait for the worker before new ones get `Overloaded`.
    max_queue: usize,
    /// Counters shared with the worker.
    pub stats: Arc<WorkerStats>,
    /// Seconds loading took.
    pub load_seconds: f64,
    /// Estimated memory of the loaded model (file plus KV cache).
    memory_bytes: u64,
    /// The worker process, in process isolation.
    pid: Option<u32>,
    /// The GPU layers it was loaded with (as asked: `auto`, `all` or a count).
    gpu_layers: crate::gpu::GpuLayers,
    /// One reference per clone of this handle: more than the manager's own means a request
    /// holds it.
    users: Arc<()>,
}

impl std::fmt::Debug for ModelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelHandle").field("id", &self.info.id).finish_non_exhaustive()
    }
}

impl ModelHandle {
    /// Loads `spec` on a new worker thread with `loader` and waits until it is ready. This
    /// blocks for as long as loading takes; async callers run it on a blocking thread.
    ///
    /// # Errors
    /// [`EngineError::ModelLoad`] when the thread cannot start or the model does not load.
    pub fn start(
        loader: Arc<dyn BackendLoader>,
        spec: LoadSpec,
        settings: &EngineSettings,
    ) -> Result<Self, EngineError> {
        Self::start_watched(loader, spec, settings, None)
    }

    /// [`ModelHandle::start`], with a worker process's crashes recorded in `crashes`.
    ///
    /// # Errors
    /// As [`ModelHandle::start`].
    pub fn start_watched(
        loader: Arc<dyn BackendLoader>,
        spec: LoadSpec,
        settings: &EngineSettings,
        crashes: Option<Arc<CrashLog>>,
    ) -> Result<Self, EngineError> {
        let id = spec.model.id.clone();
        let info = spec.model.clone();
        let memory_bytes = spec.memory_bytes();
        let gpu_layers = spec.gpu.layers;
        let max_queue = settings.max_queue.max(1);
        let stats = Arc::new(WorkerStats::default());
        let load_error = |reason: LoadError| EngineError::ModelLoad { model: id.clone(), reason };
        let cfg = WorkerConfig {
            prefill_chunk: settings.prefill_chunk,
            embed_budget: settings.embed_batch_tokens.max(1),
            prefill_stretch: settings.prefill_stretch,
        };
        let started = std::time::Instant::now();
        let room = max_queue + PING_ROOM;
        let worker = launch(loader.clone(), spec, &settings.isolation, cfg, room, stats.clone(), crashes)?;
        // Only now, once the worker has loaded the same file (in its own process, where
        // isolated), does this process read its vocabulary.
        let tokenizer = Tokenizer::new(loader.vocab(&info).map_err(load_error)?);
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let background = loader.clone();
        let init = Arc::new(move || background.background_thread());
        let pool = TokenizePool::start(&id, &tokenizer, cores / 2, TOKENIZE_QUEUE, init)
            .map_err(|e| load_error(LoadError::Thread(e.kind())))?;
        let loaded = worker.info;
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(model = %id, n_ctx = loaded.n_ctx, slots = loaded.n_slots, secs, pid = worker.pid, "model loaded");
        let template = Arc::new(ChatTemplate::new(&info.template, &info.arch));
        Ok(Self {
            info: Arc::new(info),
            loaded: Arc::new(loaded),
            template,
            tokenizer,
            pool: Arc::new(pool),
            max_tokens_cap: settings.max_tokens_cap,
            tx: worker.tx,
            max_queue,
            stats,
            load_seconds: secs,
            memory_bytes,
            pid: worker.pid,
            gpu_layers,
            users: Arc::new(()),
        })
    }

    /// The GPU layers it was loaded with, as asked (`auto`, `all` or a count).
    pub fn gpu_layers(&self) -> crate::gpu::GpuLayers {
        self.gpu_layers
    }

    /// The worker process's id, in process isolation.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The worker process's resident memory now (`None` for a worker thread, or once it is
    /// gone).
    pub fn rss_bytes(&self) -> Option<u64> {
        self.pid.filter(|_| self.is_alive()).and_then(crate::process::rss_bytes)
    }

    /// What the model takes of the memory budget (RAM): the estimate less what went to a GPU,
    /// or the worker process's real resident size where that is larger. Device memory is
    /// counted apart ([`crate::gpu::Placement::device_bytes`]).
    pub fn budget_bytes(&self) -> u64 {
        let ram = self.memory_bytes.saturating_sub(self.loaded.placement.device_bytes);
        ram.max(self.rss_bytes().unwrap_or(0))
    }

    /// Estimated memory: the file plus the KV cache.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// Whether requests run, wait, or hold a handle. Called on a clone the manager just took
    /// from its map, so two references (the map's and this one) mean nobody else holds it.
    pub(crate) fn in_use(&self) -> bool {
        Arc::strong_count(&self.users) > 2
            || self.stats.active.load(Ordering::Relaxed) > 0
            || self.stats.waiting.load(Ordering::Relaxed) > 0
    }

    /// Whether the worker is still running.
    pub fn is_alive(&self) -> bool {
        !self.stats.dead.load(Ordering::Acquire)
    }

    /// The model's tokenizer (usable from any thread).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Renders a conversation with the model's chat template, offering `tools` if given, and
    /// marks where the client's text landed so that only the template spells control tokens.
    /// A GGUF's template is code from the internet: it renders on the model's tokenizing
    /// threads, never on an async runtime thread, with a budget of steps
    /// ([`crate::limits::TEMPLATE_FUEL`]).
    ///
    /// # Errors
    /// [`EngineError::TemplateRejected`] when the template refuses the conversation or runs
    /// out of steps, [`EngineError::InvalidParam`] when a message spells a control token in
    /// text the template rewrites (so it cannot be kept apart from the template's own
    /// markers), [`EngineError::Overloaded`] when too many renderings wait.
    pub async fn render_chat(
        &self,
        messages: &[TemplateMessage],
        tools: Option<&[Tool]>,
    ) -> Result<RenderedPrompt, EngineError> {
        let this = self.clone();
        let (messages, tools) = (messages.to_vec(), tools.map(<[Tool]>::to_vec));
        self.pool
            .run(move |_| this.render_chat_here(&messages, tools.as_deref()))
            .await
            .map_err(|e| self.pool_error(e))?
    }

    /// [`ModelHandle::render_chat`] on the calling thread.
    fn render_chat_here(
        &self,
        messages: &[TemplateMessage],
        tools: Option<&[Tool]>,
    ) -> Result<RenderedPrompt, EngineError> {
        let (bos, eos) = (&self.loaded.bos, &self.loaded.eos);
        let marks = (bos.as_str(), eos.as_str());
        let (text, untrusted) = if self.template.family().in_template() {
            let wire = tools.map(crate::tools::template_tools);
            self.template.render_marked(messages, wire.as_deref(), marks, &self.tokenizer)?
        } else {
            // A template that knows no tools gets them (and any tool turns) written out.
            let written = crate::tools::generic_messages(messages, tools);
            self.template.render_marked(&written, None, marks, &self.tokenizer)?
        };
        Ok(RenderedPrompt { text, untrusted })
    }

    fn pool_error(&self, e: PoolError) -> EngineError {
        match e {
            PoolError::Full => EngineError::Overloaded { model: self.info.id.clone() },
            PoolError::Failed => EngineError::WorkerFailed,
        }
    }

    /// How the model's chat template writes tool calls.
    pub fn tool_family(&self) -> crate::tools::ToolFamily {
        self.template.family()
    }

    /// Runs `f` with the tokenizer: on this task for short text (`bytes`), else on the model's
    /// tokenizing threads (so building a large answer from the tokens belongs in `f` too).
    ///
    /// # Errors
    /// [`EngineError::Overloaded`] when too many long texts wait, [`EngineError::WorkerFailed`]
    /// when `f` panicked.
    pub async fn with_tokenizer<T: Send + 'static>(
        &self,
        bytes: usize,
        f: impl FnOnce(&Tokenizer) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        if bytes <= INLINE_TOKENIZE_BYTES {
            return Ok(f(&self.tokenizer));
        }
        self.pool.run(f).await.map_err(|e| self.pool_error(e))
    }

    /// Tokenizes and checks a request against the window and the server's cap, off the
    /// model's thread: the worker only ever receives token ids.
    ///
    /// # Errors
    /// What [`GenerateRequest::validate`] refuses.
    pub async fn validate(&self, req: GenerateRequest) -> Result<ValidGenerateRequest, EngineError> {
        let (n_ctx, cap) = (self.loaded.n_ctx, self.max_tokens_cap);
        req.refuse_early(&self.tokenizer, n_ctx)?;
        self.with_tokenizer(req.text_bytes(), move |t| req.validate(t, n_ctx, cap)).await?
    }

    /// [`ModelHandle::validate`], then [`ModelHandle::submit`].
    ///
    /// # Errors
    /// As both.
    pub async fn generate(&self, req: GenerateRequest) -> Result<mpsc::Receiver<Event>, EngineError> {
        self.submit(self.validate(req).await?)
    }

    /// Queues a generation request; events arrive on the returned receiver. Dropping the
    /// receiver cancels the request within one decode step.
    ///
    /// # Errors
    /// [`EngineError::Overloaded`] when the queue is full, [`EngineError::Unavailable`] when
    /// the worker is gone.
    pub fn submit(&self, req: ValidGenerateRequest) -> Result<mpsc::Receiver<Event>, EngineError> {
        let mut rx = self.submit_n(req, 1)?;
        rx.pop().ok_or(EngineError::WorkerFailed)
    }

    /// Queues `n` choices from one prompt: the prompt is evaluated once and its KV cells are
    /// copied to the other choices' sequences, each with its own sampler and seed (`seed + i`).
    /// One receiver per choice; dropping any cancels that choice.
    ///
    /// # Errors
    /// As [`ModelHandle::submit`]; [`EngineError::InvalidParam`] naming `n` when the model
    /// has fewer slots than `n`.
    pub fn submit_n(&self, req: ValidGenerateRequest, n: usize) -> Result<Vec<mpsc::Receiver<Event>>, EngineError> {
        if n == 0 || n > self.loaded.n_slots {
            let most = self.loaded.n_slots;
            return Err(EngineError::invalid("n", Invalid::Choices(most)));
        }
        let (events, rx) = mpsc::channel(EVENT_BUFFER);
        let (forks, mut more): (Vec<_>, Vec<_>) = (1..n).map(|_| mpsc::channel(EVENT_BUFFER)).unzip();
        self.send_work(Command::Generate { req, events, forks })?;
        more.insert(0, rx);
        Ok(more)
    }

    /// Tokenizes and fits an embedding or rerank request's inputs, off the model's thread.
    ///
    /// # Errors
    /// What [`EmbedRequest::validate`] refuses; [`EngineError::WrongModelKind`] for a
    /// generative model.
    pub async fn validate_embed(&self, req: EmbedRequest) -> Result<ValidEmbedRequest, EngineError> {
        let (rank, limit) = self.embed_shape()?;
        self.with_tokenizer(req.text_bytes(), move |t| req.validate(t, rank, limit)).await?
    }

    /// [`ModelHandle::validate_embed`] on the calling thread, for callers that may block.
    ///
    /// # Errors
    /// As [`ModelHandle::validate_embed`].
    pub fn validate_embed_blocking(&self, req: EmbedRequest) -> Result<ValidEmbedRequest, EngineError> {
        let (rank, limit) = self.embed_shape()?;
        req.validate(&self.tokenizer, rank, limit)
    }

    /// Whether the model is a reranker, and the most tokens one input may have.
    fn embed_shape(&self) -> Result<(bool, usize), EngineError> {
        if self.info.kind != ModelKind::Embedding {
            return Err(EngineError::wrong_kind(Role::Generator, Role::Embedder));
        }
        let limit = (self.loaded.n_ctx as usize).min(self.loaded.n_batch).max(1);
        Ok((self.loaded.pooling == Some(Pooling::Rank), limit))
    }

    /// Queues a validated embedding or rerank request; the pooled outputs arrive on the
    /// returned receiver. Dropping the receiver cancels the request before its next batch.
    ///
    /// # Errors
    /// As [`ModelHandle::submit`].
    pub fn submit_embed(
        &self,
        req: ValidEmbedRequest,
    ) -> Result<oneshot::Receiver<Result<EmbedOutput, EngineError>>, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send_work(Command::Embed { req, reply })?;
        Ok(rx)
    }

    /// Validates, embeds or reranks, and waits for the outputs.
    ///
    /// # Errors
    /// Queue errors, invalid or too long inputs, or a failed decode.
    pub async fn embed(&self, req: EmbedRequest) -> Result<EmbedOutput, EngineError> {
        let valid = self.validate_embed(req).await?;
        self.submit_embed(valid)?.await.map_err(|_| self.gone())?
    }

    /// How many tokens `text` takes as text (no BOS/EOS, no control tokens parsed).
    ///
    /// # Errors
    /// [`EngineError::WorkerFailed`] if tokenizing failed.
    pub async fn count_tokens(&self, text: String) -> Result<usize, EngineError> {
        self.with_tokenizer(text.len(), move |t| t.tokenize_text(&text, false).len()).await
    }

    /// How many tokens a rendered chat prompt takes (BOS included), as a request would.
    ///
    /// # Errors
    /// [`EngineError::WorkerFailed`] if tokenizing failed.
    pub async fn count_prompt(&self, prompt: RenderedPrompt) -> Result<usize, EngineError> {
        self.with_tokenizer(prompt.text.len(), move |t| t.tokenize_marked(&prompt.text, &prompt.untrusted, true).len())
            .await
    }

    /// The text of `tokens`.
    ///
    /// # Errors
    /// [`EngineError::InvalidParam`] for ids outside the vocabulary.
    pub async fn detokenize(&self, tokens: Vec<Token>) -> Result<String, EngineError> {
        self.with_tokenizer(tokens.len(), move |t| t.detokenize(&tokens)).await?
    }

    /// Whether the worker answers a command now (health checks).
    ///
    /// # Errors
    /// [`EngineError::Overloaded`] or [`EngineError::Unavailable`].
    pub async fn ping(&self) -> Result<(), EngineError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Ping { reply })?;
        rx.await.map_err(|_| self.gone())
    }

    /// Sends a work command if the queue has room (counted in `stats.waiting`).
    fn send_work(&self, cmd: Command) -> Result<(), EngineError> {
        let admitted = self
            .stats
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| (w < self.max_queue).then_some(w + 1));
        if admitted.is_err() {
            return Err(EngineError::Overloaded { model: self.info.id.clone() });
        }
        self.send(cmd).inspect_err(|_| {
            self.stats.waiting.fetch_sub(1, Ordering::AcqRel);
        })
    }

    fn send(&self, cmd: Command) -> Result<(), EngineError> {
        self.tx.try_send(cmd).map_err(|e| match e {
            TrySendError::Full(_) => EngineError::Overloaded { model: self.info.id.clone() },
            TrySendError::Disconnected(_) => self.gone(),
        })
    }

    fn gone(&self) -> EngineError {
        if self.is_alive() {
            EngineError::WorkerFailed
        } else {
            EngineError::Unavailable { model: self.info.id.clone() }
        }
    }
}
