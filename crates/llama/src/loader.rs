//! Loading: llama.cpp's backend started once per process, the context parameters of a model
//! (chat or embedding), the model placed on the devices, and the engine's `BackendLoader`.

use crate::backend::LlamaCppBackend;
use crate::init::{backend, load_model};
use crate::{gpu, vocab};
use hearth_engine::constraint::{Constraint, Grammar};
use hearth_engine::error::{GrammarError, LoadError};
use hearth_engine::{Backend, BackendLoader, KvType, LoadSpec, ModelInfo, ModelKind, Pooling, Vocab};
use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams, LlamaPoolingType};
use std::num::NonZeroU32;

/// llama.cpp's limit on parallel sequences in one context.
const MAX_SEQUENCES: usize = 256;

/// The process-wide llama.cpp backend; llama.cpp may be initialised only once.
/// Loads GGUF models with llama.cpp.
#[derive(Debug, Default, Clone, Copy)]
pub struct LlamaLoader;

impl LlamaLoader {
    /// Initialises llama.cpp (once per process).
    ///
    /// # Errors
    /// When llama.cpp cannot be initialised.
    pub fn new() -> Result<Self, LoadError> {
        backend().map(|_| Self)
    }
}

fn context_params(spec: &LoadSpec) -> Result<LlamaContextParams, LoadError> {
    check_sequences(spec.n_slots)?;
    if spec.n_kv < spec.n_ctx || spec.n_kv == 0 {
        return Err(LoadError::KvBelowContext { n_kv: spec.n_kv, n_ctx: spec.n_ctx.max(1) });
    }
    let total = NonZeroU32::new(spec.n_kv).ok_or(LoadError::KvBelowContext { n_kv: 0, n_ctx: 1 })?;
    // One KV stream per sequence keeps attention to a sequence's own cells, which is far faster
    // with several long sequences. A pool smaller than that needs the unified cache (all
    // sequences share the cells, each token's attention spans the pool's used range).
    let unified = u64::from(spec.n_kv) < u64::from(spec.n_ctx) * spec.n_slots as u64;
    let n_batch = u32::try_from(spec.n_batch.clamp(1, 1 << 16)).unwrap_or(512);
    let threads = i32::try_from(spec.threads.clamp(1, 1024)).unwrap_or(1);
    let kv_type = match spec.kv_type {
        KvType::F16 => KvCacheType::F16,
        KvType::Q8_0 => KvCacheType::Q8_0,
    };
    Ok(LlamaContextParams::default()
        .with_n_ctx(Some(total))
        .with_type_k(kv_type)
        .with_type_v(kv_type)
        .with_n_batch(n_batch)
        .with_n_ubatch(n_batch.min(512))
        .with_n_seq_max(spec.n_slots as u32)
        .with_kv_unified(unified)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_no_perf(false))
}

/// Context parameters of an embedding model: one decode call evaluates whole inputs of up to
/// `n_slots` sequences and `n_batch` tokens in a single micro-batch (non-causal attention needs
/// each input in one piece), pooled as the model says.
fn embedding_params(spec: &LoadSpec) -> Result<LlamaContextParams, LoadError> {
    check_sequences(spec.n_slots)?;
    let n_batch = u32::try_from(spec.n_batch)
        .ok()
        .filter(|b| (1..=1 << 16).contains(b))
        .ok_or(LoadError::BatchSize(spec.n_batch))?;
    // llama.cpp asserts (aborting the process) unless the micro-batch divides evenly into
    // sequences when pooling; refuse such a configuration here instead.
    if !(n_batch as usize).is_multiple_of(spec.n_slots) {
        return Err(LoadError::EmbedBatch { n_batch: n_batch as usize, inputs: spec.n_slots });
    }
    let threads = i32::try_from(spec.threads.clamp(1, 1024)).unwrap_or(1);
    let pooling = match spec.pooling {
        Pooling::Mean => LlamaPoolingType::Mean,
        Pooling::Cls => LlamaPoolingType::Cls,
        Pooling::Last => LlamaPoolingType::Last,
        Pooling::Rank => LlamaPoolingType::Rank,
    };
    Ok(LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_batch))
        .with_n_batch(n_batch)
        .with_n_ubatch(n_batch)
        .with_n_seq_max(spec.n_slots as u32)
        // Decoder embedding models keep a KV cache; one pool shared by all inputs of a call,
        // cleared after it, lets any mix of input lengths fit.
        .with_kv_unified(true)
        .with_embeddings(true)
        .with_pooling_type(pooling)
        .with_n_threads(threads)
        .with_n_threads_batch(threads))
}

fn check_sequences(n: usize) -> Result<(), LoadError> {
    if n == 0 || n > MAX_SEQUENCES {
        return Err(LoadError::Sequences { got: n, max: MAX_SEQUENCES });
    }
    Ok(())
}

impl BackendLoader for LlamaLoader {
    fn run(&self, spec: &LoadSpec, serve: &mut dyn FnMut(&mut dyn Backend)) -> Result<(), LoadError> {
        let backend = backend()?;
        let params = match spec.model.kind {
            ModelKind::Causal => context_params(spec)?,
            ModelKind::Embedding => embedding_params(spec)?,
        };
        let (model, placement) = gpu::load(spec, &params, &|p| load_model(&spec.model.path, p))?;
        let ctx = model.new_context(backend, params).map_err(|e| {
            tracing::warn!(model = %spec.model.id, error = %e, "llama.cpp could not create a context");
            LoadError::Context
        })?;
        let mut b = LlamaCppBackend::new(&model, ctx, spec, placement);
        serve(&mut b);
        Ok(())
    }

    fn background_thread(&self) {
        vocab::lower_priority();
    }

    fn devices(&self) -> Vec<hearth_engine::gpu::Device> {
        gpu::devices()
    }

    fn backends(&self) -> String {
        gpu::backends()
    }

    fn vocab(&self, model: &ModelInfo) -> Result<std::sync::Arc<dyn Vocab>, LoadError> {
        Ok(std::sync::Arc::new(vocab::VocabOnly::load(&model.path)?))
    }

    fn grammar(&self, c: &Constraint) -> Result<Grammar, GrammarError> {
        let schema = match c {
            Constraint::Gbnf(g) => return Ok(Grammar::strict(g.as_str())),
            Constraint::JsonObject => serde_json::json!({"type": "object"}),
            Constraint::JsonSchema(s) => s.clone(),
        };
        for p in patterns(&schema) {
            // The converter turns a pattern it cannot express into "any string" (a warning on
            // stderr): probe each one alone and refuse those.
            let probe = serde_json::json!({"type": "string", "pattern": p}).to_string();
            let g =
                llama_cpp_2::json_schema_to_grammar(&probe).map_err(|_| GrammarError::InvalidPattern(p.to_string()))?;
            if g.lines().any(|l| l.starts_with("string ::=")) {
                return Err(GrammarError::UnsupportedPattern(p.to_string()));
            }
        }
        llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map(Grammar::strict).map_err(|e| {
            tracing::debug!(error = %e, "llama.cpp could not convert a request's JSON Schema");
            GrammarError::Schema
        })
    }
}

/// Every `pattern` string in a schema.
fn patterns(v: &serde_json::Value) -> Vec<&str> {
    let mut out = Vec::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    match (k.as_str(), x) {
                        ("pattern", serde_json::Value::String(p)) => out.push(p.as_str()),
                        _ => stack.push(x),
                    }
                }
            }
            serde_json::Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    out
}
