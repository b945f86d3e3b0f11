//! [`EmbeddingEngine`]: loaded models and blocking calls into their workers.

use crate::config::EngineConfig;
use crate::error::EmbedError;
use hearth_engine::embed::{l2_normalize, sigmoid};
use hearth_engine::error::Role;
use hearth_engine::{
    EmbedInput, EmbedRequest, EngineError, EngineSettings, ModelHandle, ModelInfo, ModelKind, Pooling,
};
use hearth_llama::LlamaLoader;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// What a loaded model is.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDetails {
    /// Id: the file stem.
    pub id: String,
    /// The GGUF file.
    pub path: PathBuf,
    /// `general.architecture`.
    pub architecture: String,
    /// Width of an embedding (for a reranker: number of scores, 1).
    pub dimension: usize,
    /// Most tokens one input may have.
    pub max_tokens: usize,
    /// How token states become one output.
    pub pooling: Pooling,
    /// Quantisation.
    pub quantization: String,
    /// Number of weights.
    pub parameters: u64,
}

/// Embedding models loaded through llama.cpp, each on its own worker thread. `Send + Sync`:
/// share it between threads (e.g. in an `Arc`); concurrent calls are batched together.
pub struct EmbeddingEngine {
    loader: Arc<LlamaLoader>,
    settings: EngineSettings,
    normalize: bool,
    truncate: bool,
    /// Loaded models by id; the first loaded is the default until it is unloaded.
    models: Mutex<BTreeMap<String, ModelHandle>>,
    default: Mutex<Option<String>>,
}

impl std::fmt::Debug for EmbeddingEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingEngine").field("models", &self.list_models()).finish_non_exhaustive()
    }
}

impl EmbeddingEngine {
    /// Starts the engine and loads the configured models.
    ///
    /// # Errors
    /// When llama.cpp cannot start or a model cannot be loaded.
    pub fn new(cfg: EngineConfig) -> Result<Self, EmbedError> {
        let loader = Arc::new(LlamaLoader::new().map_err(|e| EmbedError::Config(e.to_string()))?);
        let settings = EngineSettings {
            threads: cfg.threads,
            max_queue: cfg.max_queue,
            embed_batch_tokens: cfg.batch_tokens,
            embed_max_inputs: cfg.batch_inputs,
            ..EngineSettings::default()
        };
        let engine = Self {
            loader,
            settings,
            normalize: cfg.normalize,
            truncate: cfg.truncate,
            models: Mutex::new(BTreeMap::new()),
            default: Mutex::new(None),
        };
        for path in &cfg.model_paths {
            engine.load_model(path)?;
        }
        Ok(engine)
    }

    /// Loads a GGUF embedding model or reranker; returns its id (the file stem). Loading an id
    /// that is already loaded replaces it.
    ///
    /// # Errors
    /// When the file is not a GGUF embedding model or llama.cpp cannot load it.
    pub fn load_model(&self, path: impl AsRef<Path>) -> Result<String, EmbedError> {
        let path = path.as_ref();
        let bad = |reason: String| EmbedError::BadModelFile { path: path.to_path_buf(), reason };
        let info = ModelInfo::from_file(path).map_err(|e| bad(e.to_string()))?;
        if info.kind != ModelKind::Embedding {
            return Err(EmbedError::NotAnEmbeddingModel(info.id));
        }
        let id = info.id.clone();
        let spec = self.settings.load_spec(info, None);
        let handle = ModelHandle::start(self.loader.clone(), spec, &self.settings)?;
        self.models.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), handle);
        self.default.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(|| id.clone());
        Ok(id)
    }

    /// Unloads a model; its worker finishes the calls already queued, then frees the model.
    /// Returns whether it was loaded.
    pub fn unload_model(&self, id: &str) -> bool {
        let removed = self.models.lock().unwrap_or_else(PoisonError::into_inner).remove(id).is_some();
        let mut default = self.default.lock().unwrap_or_else(PoisonError::into_inner);
        if default.as_deref() == Some(id) {
            *default = self.list_models().into_iter().next();
        }
        removed
    }

    /// Ids of the loaded models, sorted.
    pub fn list_models(&self) -> Vec<String> {
        self.models.lock().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    /// What a loaded model is.
    ///
    /// # Errors
    /// [`EmbedError::NotLoaded`].
    pub fn model_info(&self, id: &str) -> Result<ModelDetails, EmbedError> {
        let h = self.handle(Some(id))?;
        Ok(ModelDetails {
            id: h.info.id.clone(),
            path: h.info.path.clone(),
            architecture: h.info.arch.clone(),
            dimension: h.loaded.n_embd,
            max_tokens: (h.loaded.n_ctx as usize).min(h.loaded.n_batch),
            pooling: h.loaded.pooling.unwrap_or_default(),
            quantization: h.info.quant.clone(),
            parameters: h.info.n_params,
        })
    }

    /// Embeds one text with the default model.
    ///
    /// # Errors
    /// No model loaded, a reranker as default, an input over the window (without truncation),
    /// overload, or a failed decode.
    ///
    /// # Panics
    /// When called from inside an async runtime (it blocks; use `spawn_blocking`).
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut v = self.embed_with(None, &[text])?;
        Ok(v.pop().unwrap_or_default())
    }

    /// Embeds several texts with the default model, in order, in as few decode calls as the
    /// batch size allows.
    ///
    /// # Errors
    /// As [`EmbeddingEngine::embed`].
    ///
    /// # Panics
    /// As [`EmbeddingEngine::embed`].
    pub fn embed_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with(None, texts)
    }

    /// Embeds texts with a named model (`None`: the default model).
    ///
    /// # Errors
    /// As [`EmbeddingEngine::embed`].
    ///
    /// # Panics
    /// As [`EmbeddingEngine::embed`].
    pub fn embed_with<S: AsRef<str>>(&self, model: Option<&str>, texts: &[S]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let h = self.handle(model)?;
        if h.loaded.pooling == Some(Pooling::Rank) {
            return Err(EngineError::wrong_kind(Role::Reranker, Role::Embedder).into());
        }
        let inputs = texts.iter().map(|t| EmbedInput::Text(t.as_ref().to_string())).collect();
        let mut vectors = self.call(&h, inputs)?;
        if self.normalize {
            vectors.iter_mut().for_each(|v| l2_normalize(v));
        }
        Ok(vectors)
    }

    /// Relevance of each document to `query` in (0, 1), in document order, with a reranker
    /// (`model`: `None` for the default model).
    ///
    /// # Errors
    /// As [`EmbeddingEngine::embed`], or when the model is not a reranker.
    ///
    /// # Panics
    /// As [`EmbeddingEngine::embed`].
    pub fn rerank<S: AsRef<str>>(
        &self,
        model: Option<&str>,
        query: &str,
        documents: &[S],
    ) -> Result<Vec<f32>, EmbedError> {
        let h = self.handle(model)?;
        let query: std::sync::Arc<str> = query.into();
        let pair = |d: &S| EmbedInput::Pair { query: query.clone(), document: d.as_ref().to_string() };
        let vectors = self.call(&h, documents.iter().map(pair).collect())?;
        Ok(vectors.iter().map(|v| sigmoid(v.first().copied().unwrap_or(f32::NEG_INFINITY))).collect())
    }

    fn call(&self, h: &ModelHandle, inputs: Vec<EmbedInput>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let valid = h.validate_embed_blocking(EmbedRequest { inputs, truncate: self.truncate })?;
        let rx = h.submit_embed(valid)?;
        let out = rx.blocking_recv().map_err(|_| EngineError::WorkerFailed)??;
        Ok(out.vectors)
    }

    fn handle(&self, id: Option<&str>) -> Result<ModelHandle, EmbedError> {
        let id = match id {
            Some(id) => id.to_string(),
            None => self.default.lock().unwrap_or_else(PoisonError::into_inner).clone().unwrap_or_default(),
        };
        let models = self.models.lock().unwrap_or_else(PoisonError::into_inner);
        models.get(&id).cloned().ok_or(EmbedError::NotLoaded(id))
    }
}
