//! The boundary between the engine and an inference library.
//!
//! A [`BackendLoader`] is `Send` and lives anywhere; it loads a model *on the worker thread* and
//! hands a [`Backend`] to the worker loop for as long as the model is loaded. A backend is not
//! `Send` (llama.cpp contexts are not) and only plain data crosses this boundary.

use crate::error::{DecodeError, GrammarError, LoadError};
use crate::registry::{ModelInfo, ModelKind};
use crate::sampling::SamplingParams;

pub use crate::model::{KvType, Pooling, SpecialTokens, Token};

/// One token of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchItem {
    /// The token.
    pub token: Token,
    /// Its position in the sequence.
    pub pos: u32,
    /// The sequence (slot) it belongs to.
    pub slot: usize,
    /// Whether logits are needed for it.
    pub logits: bool,
}

/// What the worker needs to know about a loaded model.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct BackendInfo {
    /// Context window of one sequence.
    pub n_ctx: u32,
    /// KV cells shared by all sequences (at least `n_ctx`).
    pub n_kv: u32,
    /// Sequences that can run at once.
    pub n_slots: usize,
    /// Most tokens one decode call takes.
    pub n_batch: usize,
    /// Vocabulary size.
    pub n_vocab: u32,
    /// Text of the BOS token (for chat templates).
    pub bos: String,
    /// Text of the EOS token (for chat templates).
    pub eos: String,
    /// Width of one output of an embedding model (hidden size, or classes for a reranker);
    /// 0 for a generative model.
    pub n_embd: usize,
    /// Pooling of an embedding model; `None` for a generative model.
    pub pooling: Option<Pooling>,
    /// Special tokens.
    pub special: SpecialTokens,
    /// Where the model's layers are.
    pub placement: crate::gpu::Placement,
}

/// How a model is to be loaded.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The model.
    pub model: ModelInfo,
    /// Context window per sequence.
    pub n_ctx: u32,
    /// KV cells shared by all sequences.
    pub n_kv: u32,
    /// Parallel sequences (for an embedding model: inputs per decode call).
    pub n_slots: usize,
    /// Tokens per decode call.
    pub n_batch: usize,
    /// CPU threads.
    pub threads: usize,
    /// Pooling, for an embedding model (generative models ignore it).
    pub pooling: Pooling,
    /// KV cache element type (embedding models ignore it).
    pub kv_type: KvType,
    /// GPU placement.
    pub gpu: crate::gpu::GpuPlan,
}

impl LoadSpec {
    /// Estimated memory once loaded: the file plus, for a generative model, the KV cache.
    pub fn memory_bytes(&self) -> u64 {
        let cells = if self.model.kind == ModelKind::Causal { u64::from(self.n_kv) } else { 0 };
        self.model.memory_bytes(cells, self.kv_type)
    }
}

/// A loaded model, owned by its worker thread.
pub trait Backend {
    /// Facts about the loaded model.
    fn info(&self) -> BackendInfo;
    /// The bytes of a token (may be part of a UTF-8 character). Prompts arrive tokenized (see
    /// [`BackendLoader::vocab`]); a backend only turns its own output back into text.
    fn piece(&self, token: Token) -> Vec<u8>;
    /// Whether the token ends generation.
    fn is_eog(&self, token: Token) -> bool;
    /// Prepares the sampler of a slot for a new request (with its grammar, if any).
    ///
    /// # Errors
    /// Why the request's grammar cannot be built (the client's 400).
    fn start_sequence(&mut self, slot: usize, params: &SamplingParams) -> Result<(), GrammarError>;
    /// Evaluates a batch.
    ///
    /// # Errors
    /// What failed, for the log.
    fn decode(&mut self, batch: &[BatchItem]) -> Result<(), DecodeError>;
    /// Samples the next token of `slot` from the logits of batch row `row`.
    fn sample(&mut self, slot: usize, row: usize) -> Token;
    /// Log-probabilities from batch row `row`'s logits (the model's distribution, before any
    /// sampler): `token`'s, and the `top` most likely tokens' (most likely first). Valid until
    /// the next decode.
    fn logprobs(&self, row: usize, token: Token, top: usize) -> (f32, Vec<(Token, f32)>) {
        let _ = (row, token, top);
        (0.0, Vec::new())
    }
    /// Makes `dst`'s KV cells a copy of all of `src`'s (another choice from the same prompt);
    /// false if the cache cannot (the caller then evaluates the prompt again).
    fn copy_kv(&mut self, src: usize, dst: usize) -> bool {
        let _ = (src, dst);
        false
    }
    /// Drops the KV cells of `slot` from position `keep` on; false if the cache cannot do a
    /// partial removal (the caller then clears the whole slot with `keep = 0`).
    fn truncate_kv(&mut self, slot: usize, keep: u32) -> bool;
    /// Evaluates whole inputs in one call and returns one pooled output per input (an
    /// embedding, or a reranker's logits). Inputs together hold at most `n_batch` tokens and
    /// number at most `n_slots`.
    ///
    /// # Errors
    /// What failed, for the log (the library, or a model that produces no embeddings).
    fn embed(&mut self, inputs: &[&[Token]]) -> Result<Vec<Vec<f32>>, DecodeError> {
        let _ = inputs;
        Err(DecodeError::NoEmbedding(0))
    }
}

/// Loads models for worker threads.
pub trait BackendLoader: Send + Sync + 'static {
    /// Loads `spec` on the calling (worker) thread and runs `serve` with the backend until it
    /// returns; the model is freed afterwards.
    ///
    /// # Errors
    /// Why the model could not be loaded.
    fn run(&self, spec: &LoadSpec, serve: &mut dyn FnMut(&mut dyn Backend)) -> Result<(), LoadError>;

    /// Loads `model`'s vocabulary alone (no weights), for tokenizing on the request's side:
    /// shared read-only by every request, so no prompt is tokenized on the model's thread.
    ///
    /// # Errors
    /// Why the vocabulary could not be read.
    fn vocab(&self, model: &ModelInfo) -> Result<std::sync::Arc<dyn crate::tokenizer::Vocab>, LoadError>;

    /// The GPU devices this backend can use here (none for a CPU build or without a GPU).
    fn devices(&self) -> Vec<crate::gpu::Device> {
        Vec::new()
    }

    /// The compute backends this build has (`CPU`, `CPU, Vulkan`), for reports.
    fn backends(&self) -> String {
        "CPU".into()
    }

    /// Called first on each thread that does background work for requests (tokenizing long
    /// prompts), to give it a lower CPU priority than the model's own threads. The default
    /// does nothing.
    fn background_thread(&self) {}

    /// The grammar that makes a model's output satisfy `c` (checked already by
    /// [`crate::constraint`]); called on the request's side, never on a worker. The default
    /// takes GBNF as given and converts nothing else.
    ///
    /// # Errors
    /// Why `c` cannot be expressed as a grammar (the client's 400).
    fn grammar(&self, c: &crate::constraint::Constraint) -> Result<crate::constraint::Grammar, GrammarError> {
        match c {
            crate::constraint::Constraint::Gbnf(g) => Ok(crate::constraint::Grammar::strict(g.as_str())),
            _ => Err(GrammarError::SchemaUnsupported),
        }
    }
}
