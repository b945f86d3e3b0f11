//! The llama.cpp backend of Hearth's engine, over the `llama-cpp-2` crate.
//!
//! This is the only crate that touches llama.cpp. [`LlamaLoader`] implements the engine's
//! [`BackendLoader`]: it loads a GGUF model on the worker thread, creates one context holding
//! all parallel sequences (one KV stream per sequence, or a unified pool when the configured KV
//! size is smaller than context x sequences), and serves the engine's [`Backend`] calls with it
//! until the worker stops.
//!
//! Every value passed to llama.cpp is checked first: a failed `GGML_ASSERT` aborts the whole
//! process, so no request may choose context parameters, and token ids, positions and batch
//! sizes are bounded before they are handed over.

use hearth_engine::constraint::{Constraint, Grammar};
use hearth_engine::error::{DecodeError, GrammarError, LoadError};
use hearth_engine::sampling::SamplingParams;
use hearth_engine::{
    Backend, BackendInfo, BackendLoader, BatchItem, KvType, LoadSpec, ModelInfo, ModelKind, Pooling, SpecialTokens,
    Token, Vocab,
};
use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;

pub mod gpu;
mod lazy;
mod vocab;
use std::sync::OnceLock;

/// llama.cpp's limit on parallel sequences in one context.
const MAX_SEQUENCES: usize = 256;

/// The process-wide llama.cpp backend; llama.cpp may be initialised only once.
static BACKEND: OnceLock<Option<LlamaBackend>> = OnceLock::new();

fn backend() -> Result<&'static LlamaBackend, LoadError> {
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            #[cfg(feature = "dynamic-backends")]
            load_backend_modules();
            LlamaBackend::init().map_err(|e| tracing::error!(error = %e, "llama.cpp could not be initialised")).ok()
        })
        .as_ref()
        .ok_or(LoadError::Init)
}

/// With `dynamic-backends`, ggml's backends (the CPU variants, Vulkan, CUDA) are modules
/// (`libggml-*.so`) loaded before llama.cpp starts: from the folder of this program (where
/// `scripts/package` puts them beside `hearth`), else from where the build left them.
#[cfg(feature = "dynamic-backends")]
fn load_backend_modules() {
    let beside = std::env::current_exe().ok().and_then(|p| p.parent().map(std::path::Path::to_path_buf));
    match beside {
        Some(dir) if std::fs::read_dir(&dir).is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libggml-")))) => {
            if dir.to_str().is_some() {
                llama_cpp_2::llama_backend::load_backends_from_path(&dir);
            }
        }
        _ => llama_cpp_2::llama_backend::load_backends(),
    }
}

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

/// Reads the GGUF at `path` with `params`; the library's reason goes to the log.
fn load_model(path: &std::path::Path, params: &LlamaModelParams) -> Result<LlamaModel, LoadError> {
    let backend = backend()?;
    if !path.is_file() {
        return Err(LoadError::Missing);
    }
    LlamaModel::load_from_file(backend, path, params).map_err(|e| {
        tracing::warn!(path = %path.display(), error = %e, "llama.cpp could not read the model file");
        LoadError::Unreadable
    })
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

/// llama.cpp's decode status as a cause.
fn decode_error(e: llama_cpp_2::DecodeError) -> DecodeError {
    match e {
        llama_cpp_2::DecodeError::NoKvCacheSlot => DecodeError::NoKvSpace,
        llama_cpp_2::DecodeError::NTokensZero => DecodeError::BatchSize { tokens: 0, limit: 0 },
        llama_cpp_2::DecodeError::Unknown(code) => DecodeError::Library(code),
    }
}

/// Feeds a freely sampled token to a slot's lazy grammar; engages it at its trigger.
fn watch_trigger(s: &mut SlotSampler, model: &LlamaModel, t: LlamaToken) {
    let Some(l) = s.lazy.as_mut() else { return };
    let piece = String::from_utf8_lossy(&model.vocab().token_to_piece(t, true, None)).into_owned();
    match l.push(model, t, &piece) {
        Some(Ok(g)) => {
            s.grammar = Some(g);
            s.lazy = None;
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "tool grammar not engaged; the answer goes on unconstrained");
            s.lazy = None;
        }
        None if !l.alive() => s.lazy = None,
        None => {}
    }
}

/// `token`'s log-probability under `logits` and the `top` most likely tokens' (most likely
/// first), in one pass for the normaliser and a partial selection for the top.
fn log_softmax_report(logits: &[f32], token: Token, top: usize) -> (f32, Vec<(Token, f32)>) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if logits.is_empty() || !max.is_finite() {
        return (f32::NEG_INFINITY, Vec::new());
    }
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let norm = max + sum.ln() as f32;
    let lp = |t: usize| logits[t] - norm;
    let chosen = logits.get(token as usize).map_or(f32::NEG_INFINITY, |l| l - norm);
    let k = top.min(logits.len());
    let mut ids: Vec<usize> = (0..logits.len()).collect();
    if k > 0 && k < ids.len() {
        ids.select_nth_unstable_by(k - 1, |a, b| logits[*b].total_cmp(&logits[*a]));
    }
    ids.truncate(k);
    ids.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
    (chosen, ids.into_iter().map(|t| (t as Token, lp(t))).collect())
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

/// A slot's samplers: the chain of the request's parameters and, for structured output, the
/// grammar that filters it.
struct SlotSampler {
    chain: LlamaSampler,
    grammar: Option<LlamaSampler>,
    /// A lazy grammar waiting for its trigger (tool calls under `auto`).
    lazy: Option<lazy::Lazy>,
    /// What says when the pre-filter is exact.
    tail: Tail,
}

/// A loaded model and its context, owned by one worker thread.
struct LlamaCppBackend<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    /// Reused for every decode call; holds up to `info.n_batch` tokens.
    batch: LlamaBatch<'static>,
    /// One sampler chain per slot, set when a sequence starts there.
    samplers: Vec<Option<SlotSampler>>,
    info: BackendInfo,
}

impl<'m> LlamaCppBackend<'m> {
    fn new(model: &'m LlamaModel, ctx: LlamaContext<'m>, spec: &LoadSpec, placement: hearth_engine::gpu::Placement) -> Self {
        let n_vocab = u32::try_from(model.n_vocab()).unwrap_or(0);
        let vocab = model.vocab();
        let text_of = |t: LlamaToken| {
            if t.0 >= 0 && (t.0 as u32) < n_vocab {
                String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned()
            } else {
                String::new()
            }
        };
        let id = |t: LlamaToken| u32::try_from(t.0).ok().filter(|&t| t < n_vocab);
        let embedding = spec.model.kind == ModelKind::Embedding;
        let n_embd = match spec.pooling {
            _ if !embedding => 0,
            Pooling::Rank => model.n_cls_out() as usize,
            _ => usize::try_from(model.n_embd_out()).unwrap_or(0),
        };
        let info = BackendInfo {
            n_ctx: spec.n_ctx,
            n_kv: spec.n_kv,
            n_slots: spec.n_slots,
            n_batch: ctx.n_batch() as usize,
            n_vocab,
            bos: text_of(vocab.bos()),
            eos: text_of(vocab.eos()),
            n_embd,
            pooling: embedding.then_some(spec.pooling),
            special: SpecialTokens {
                bos: id(vocab.bos()),
                eos: id(vocab.eos()),
                sep: id(vocab.sep()),
                add_bos: vocab.should_add_bos(),
                add_eos: vocab.should_add_eos(),
                add_sep: vocab.should_add_sep(),
            },
            placement,
        };
        let batch = LlamaBatch::new(info.n_batch, 1);
        Self { model, ctx, batch, samplers: (0..spec.n_slots).map(|_| None).collect(), info }
    }

    fn sampler_chain(&self, p: &SamplingParams) -> LlamaSampler {
        let n_vocab = self.model.n_vocab();
        let mut chain = Vec::new();
        if !p.logit_bias.is_empty() {
            let biases: Vec<LlamaLogitBias> = p
                .logit_bias
                .iter()
                .filter(|(t, _)| *t < self.info.n_vocab)
                .map(|&(t, b)| LlamaLogitBias::new(LlamaToken(t as i32), b))
                .collect();
            chain.push(LlamaSampler::logit_bias(n_vocab, &biases));
        }
        if p.repeat_penalty != 1.0 || p.presence_penalty != 0.0 || p.frequency_penalty != 0.0 {
            chain.push(LlamaSampler::penalties(
                n_vocab,
                i32::try_from(p.penalty_last_n.min(self.ctx.n_ctx())).unwrap_or(i32::MAX),
                p.repeat_penalty,
                p.frequency_penalty,
                p.presence_penalty,
            ));
        }
        if p.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
            return LlamaSampler::chain(chain, true);
        }
        if p.top_k > 0 {
            chain.push(LlamaSampler::top_k(p.top_k.min(i32::MAX as u32) as i32));
        }
        if p.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(p.top_p, 1));
        }
        if p.min_p > 0.0 {
            chain.push(LlamaSampler::min_p(p.min_p, 1));
        }
        chain.push(LlamaSampler::temp(p.temperature));
        chain.push(LlamaSampler::dist(p.seed));
        LlamaSampler::chain(chain, true)
    }
}

impl Backend for LlamaCppBackend<'_> {
    fn info(&self) -> BackendInfo {
        self.info.clone()
    }

    fn piece(&self, token: Token) -> Vec<u8> {
        self.model.vocab().token_to_piece(LlamaToken(token as i32), false, None)
    }

    fn is_eog(&self, token: Token) -> bool {
        self.model.vocab().is_eog(LlamaToken(token as i32))
    }

    fn start_sequence(&mut self, slot: usize, params: &SamplingParams) -> Result<(), GrammarError> {
        let chain = self.sampler_chain(params);
        let parse = |gbnf: &str| {
            LlamaSampler::grammar(self.model, gbnf, "root").map_err(|e| {
                tracing::debug!(error = %e, "llama.cpp could not parse a request's grammar");
                GrammarError::Syntax
            })
        };
        let grammar = match &params.grammar {
            None => None,
            Some(g) if g.triggers.is_empty() => Some(parse(&g.gbnf)?),
            // Lazy: made when its trigger appears (see `lazy`); parsed once now so that a bad
            // grammar is the client's 400 before any token.
            Some(g) => {
                parse(&g.gbnf)?;
                None
            }
        };
        let lazy = params.grammar.as_ref().filter(|g| !g.triggers.is_empty()).map(lazy::Lazy::new);
        if let Some(s) = self.samplers.get_mut(slot) {
            let tail = Tail {
                temperature: params.temperature,
                top_k: params.top_k,
                top_p: params.top_p,
                min_p: params.min_p,
                // Biases and penalties move logits after the pre-filter has ranked them.
                reshaped: !params.logit_bias.is_empty()
                    || params.repeat_penalty != 1.0
                    || params.presence_penalty != 0.0
                    || params.frequency_penalty != 0.0,
            };
            *s = Some(SlotSampler { chain, grammar, lazy, tail });
        }
        Ok(())
    }

    fn decode(&mut self, items: &[BatchItem]) -> Result<(), DecodeError> {
        if items.is_empty() || items.len() > self.info.n_batch {
            return Err(DecodeError::BatchSize { tokens: items.len(), limit: self.info.n_batch });
        }
        self.batch.clear();
        for it in items {
            let out_of_range = DecodeError::OutOfRange { seq: it.slot, token: it.token };
            if it.token >= self.info.n_vocab || it.slot >= self.info.n_slots {
                return Err(out_of_range);
            }
            self.batch
                .add(LlamaToken(it.token as i32), it.pos as i32, &[it.slot as i32], it.logits)
                .map_err(|_| out_of_range)?;
        }
        self.ctx.decode(&mut self.batch).map_err(decode_error)
    }

    fn sample(&mut self, slot: usize, row: usize) -> Token {
        let ctx = &self.ctx;
        let model = self.model;
        match self.samplers.get_mut(slot).and_then(Option::as_mut) {
            Some(s @ SlotSampler { grammar: None, lazy: Some(_), .. }) => {
                let t = s.chain.sample(ctx, row as i32);
                watch_trigger(s, model, t);
                t.0 as u32
            }
            Some(SlotSampler { chain, grammar: None, .. }) => chain.sample(ctx, row as i32).0 as u32,
            Some(SlotSampler { chain, grammar: Some(g), tail, .. }) => {
                let vocab = self.model.vocab();
                let end = if vocab.eos().0 >= 0 { vocab.eos() } else { vocab.eot() };
                sample_constrained(ctx, row as i32, chain, g, end, *tail).0 as u32
            }
            None => LlamaSampler::greedy().sample(ctx, row as i32).0 as u32,
        }
    }

    fn logprobs(&self, row: usize, token: Token, top: usize) -> (f32, Vec<(Token, f32)>) {
        log_softmax_report(self.ctx.get_logits_ith(row as i32), token, top)
    }

    fn copy_kv(&mut self, src: usize, dst: usize) -> bool {
        // Whole sequences only: llama.cpp asserts (and aborts) on a partial copy between
        // streams of a non-unified cache.
        src < self.info.n_slots
            && dst < self.info.n_slots
            && self.ctx.copy_kv_cache_seq(src as i32, dst as i32, None, None).is_ok()
    }

    fn truncate_kv(&mut self, slot: usize, keep: u32) -> bool {
        let p0 = if keep == 0 { None } else { Some(keep) };
        self.ctx.clear_kv_cache_seq(Some(slot as u32), p0, None).unwrap_or(false)
    }

    fn embed(&mut self, inputs: &[&[Token]]) -> Result<Vec<Vec<f32>>, DecodeError> {
        let info = &self.info;
        let total: usize = inputs.iter().map(|t| t.len()).sum();
        if info.pooling.is_none() {
            return Err(DecodeError::NoEmbedding(0));
        }
        if inputs.is_empty() || inputs.len() > info.n_slots || total > info.n_batch {
            return Err(DecodeError::BatchSize { tokens: total, limit: info.n_batch });
        }
        self.batch.clear();
        for (seq, tokens) in inputs.iter().enumerate() {
            let bad = tokens.iter().find(|&&t| t >= info.n_vocab);
            if tokens.is_empty() || tokens.len() > info.n_ctx as usize || bad.is_some() {
                return Err(DecodeError::OutOfRange { seq, token: bad.copied().unwrap_or(0) });
            }
            for (pos, &t) in tokens.iter().enumerate() {
                self.batch
                    .add(LlamaToken(t as i32), pos as i32, &[seq as i32], true)
                    .map_err(|_| DecodeError::OutOfRange { seq, token: t })?;
            }
        }
        let decoded = self.ctx.decode(&mut self.batch).map_err(decode_error);
        let out = decoded.and_then(|()| {
            (0..inputs.len())
                .map(|seq| {
                    self.ctx
                        .embeddings_seq_ith(seq as i32)
                        .map(<[f32]>::to_vec)
                        .map_err(|_| DecodeError::NoEmbedding(seq))
                })
                .collect()
        });
        // A decoder embedding model keeps the inputs' KV cells; the next call starts empty.
        self.ctx.clear_kv_cache();
        out
    }
}

/// Candidates the grammar filters before it is run over the whole vocabulary.
const PREFILTER: usize = 512;

/// What decides whether tokens below the pre-filter could still be sampled.
#[derive(Clone, Copy)]
struct Tail {
    temperature: f32,
    top_k: u32,
    top_p: f32,
    min_p: f32,
    /// Logit biases or penalties are on: logits change after ranking, so no pre-filter.
    reshaped: bool,
}

impl Tail {
    /// Whether the chain's pick among the `allowed` grammar-allowed tokens of the pre-filter is
    /// the pick it would make over the whole vocabulary, when the best allowed token's logit is
    /// `gap` above every token left out. The chain runs top_k, top_p, min_p, temperature, dist:
    /// - greedy picks the best allowed token, which is inside;
    /// - top_k keeps the k best allowed tokens, all inside when `allowed >= k`;
    /// - without top_p, min_p drops every token more than `-ln(min_p)` below the best;
    /// - otherwise the left-out tokens that top_k (or the whole vocabulary) could keep weigh
    ///   together less than 1e-4 of the best token at the temperature.
    fn cut(self, gap: f32, allowed: usize, n_vocab: usize) -> bool {
        if self.reshaped {
            return false;
        }
        if self.temperature <= 0.0 || (self.top_k > 0 && allowed >= self.top_k as usize) {
            return true;
        }
        if self.top_p >= 1.0 && self.min_p > 0.0 && gap > -self.min_p.ln() {
            return true;
        }
        let outside = if self.top_k > 0 { self.top_k as usize - allowed } else { n_vocab.saturating_sub(PREFILTER) };
        (outside as f32).ln() - gap / self.temperature < (1e-4_f32).ln()
    }
}

/// Samples under a grammar. The chain picks a token from the raw logits and the grammar checks
/// only that one token (cheap), as llama.cpp's common sampler does. When it refuses, the grammar
/// filters the [`PREFILTER`] most likely tokens; if the best allowed one among them is far
/// enough above the rest of the vocabulary that nothing below could be sampled ([`Tail::cut`]),
/// the chain picks among those; only otherwise is the grammar run over the whole vocabulary
/// (tens of milliseconds for 50k tokens). Both samplers then accept the token, so the grammar
/// never sees a token it did not allow (which would abort the process in llama.cpp).
fn sample_constrained(
    ctx: &LlamaContext<'_>,
    row: i32,
    chain: &mut LlamaSampler,
    g: &mut LlamaSampler,
    eos: LlamaToken,
    tail: Tail,
) -> LlamaToken {
    let mut cur = ctx.token_data_array_ith(row);
    chain.apply(&mut cur);
    let first = cur.selected_token().unwrap_or(LlamaToken(0));
    let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(first, 1.0, 0.0)], false);
    g.apply(&mut one);
    let token = if one.data.first().is_some_and(|d| d.logit() > f32::NEG_INFINITY) {
        Some(first)
    } else {
        prefiltered(ctx.get_logits_ith(row), chain, g, tail).or_else(|| {
            let mut cur = ctx.token_data_array_ith(row);
            g.apply(&mut cur);
            if !cur.data.iter().any(|d| d.logit() > f32::NEG_INFINITY) {
                return None;
            }
            chain.apply(&mut cur);
            allowed_pick(&cur)
        })
    };
    // Nothing allowed (a grammar with no way on): end the sequence without feeding the grammar
    // a token it refused.
    let Some(token) = token else { return eos };
    g.accept(token);
    chain.accept(token);
    token
}

/// The chain's pick among the grammar-allowed tokens of the most likely [`PREFILTER`], when
/// that is the pick it would make over the whole vocabulary.
fn prefiltered(logits: &[f32], chain: &mut LlamaSampler, g: &mut LlamaSampler, tail: Tail) -> Option<LlamaToken> {
    if logits.len() <= PREFILTER {
        return None;
    }
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    let desc = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]);
    ids.select_nth_unstable_by(PREFILTER - 1, desc);
    ids.truncate(PREFILTER);
    let floor = ids.iter().map(|&i| logits[i as usize]).fold(f32::INFINITY, f32::min);
    let data = ids.iter().map(|&i| LlamaTokenData::new(LlamaToken(i as i32), logits[i as usize], 0.0)).collect();
    let mut top = LlamaTokenDataArray::new(data, false);
    g.apply(&mut top);
    let finite = top.data.iter().map(LlamaTokenData::logit).filter(|l| *l > f32::NEG_INFINITY);
    let (allowed, best) = finite.fold((0, f32::NEG_INFINITY), |(n, m), l| (n + 1, m.max(l)));
    if allowed == 0 || !tail.cut(best - floor, allowed, logits.len()) {
        return None;
    }
    chain.apply(&mut top);
    allowed_pick(&top)
}

/// The chain's pick, if the grammar allowed it (its logit is not -inf).
fn allowed_pick(cur: &LlamaTokenDataArray) -> Option<LlamaToken> {
    cur.selected_token().filter(|t| cur.data.iter().any(|d| d.id() == *t && d.logit() > f32::NEG_INFINITY))
}

#[cfg(test)]
mod tests {
    use super::Tail;

    #[test]
    fn the_tail_is_cut_only_when_nothing_below_could_be_sampled() {
        let t = |temperature, top_k, top_p, min_p| Tail { temperature, top_k, top_p, min_p, reshaped: false };
        assert!(t(0.0, 0, 1.0, 0.0).cut(0.0, 1, 50_000), "greedy");
        let defaults = t(0.8, 40, 0.95, 0.05);
        assert!(defaults.cut(0.1, 40, 50_000), "top_k filled inside");
        assert!(defaults.cut(12.0, 1, 50_000), "39 outside at e^-15 each");
        assert!(!defaults.cut(3.0, 1, 50_000));
        let min_p = t(0.8, 0, 1.0, 0.05);
        assert!(min_p.cut(3.1, 1, 50_000) && !min_p.cut(2.9, 1, 50_000), "ln(20) = 3.0");
        let plain = t(1.0, 0, 1.0, 0.0);
        assert!(plain.cut(21.0, 1, 50_000) && !plain.cut(10.0, 1, 50_000));
        assert!(!Tail { reshaped: true, ..t(0.0, 0, 1.0, 0.0) }.cut(99.0, 1, 50_000), "biased logits");
    }
}
