//! The boundary between the engine and an inference library.
//!
//! A [`BackendLoader`] is `Send` and lives anywhere; it loads a model *on the worker thread* and
//! hands a [`Backend`] to the worker loop for as long as the model is loaded. A backend is not
//! `Send` (llama.cpp contexts are not) and only plain data crosses this boundary.

use crate::registry::ModelInfo;
use crate::sampling::SamplingParams;

/// A token id.
pub type Token = u32;

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
#[derive(Debug, Clone, PartialEq)]
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
    /// Parallel sequences.
    pub n_slots: usize,
    /// Tokens per decode call.
    pub n_batch: usize,
    /// CPU threads.
    pub threads: usize,
}

/// A loaded model, owned by its worker thread.
pub trait Backend {
    /// Facts about the loaded model.
    fn info(&self) -> BackendInfo;
    /// Tokenizes text; special tokens in the text are parsed.
    fn tokenize(&self, text: &str, add_special: bool) -> Vec<Token>;
    /// The bytes of a token (may be part of a UTF-8 character).
    fn piece(&self, token: Token) -> Vec<u8>;
    /// Whether the token ends generation.
    fn is_eog(&self, token: Token) -> bool;
    /// Prepares the sampler of a slot for a new request.
    fn start_sequence(&mut self, slot: usize, params: &SamplingParams);
    /// Evaluates a batch.
    ///
    /// # Errors
    /// A message for the log when the library fails.
    fn decode(&mut self, batch: &[BatchItem]) -> Result<(), String>;
    /// Samples the next token of `slot` from the logits of batch row `row`.
    fn sample(&mut self, slot: usize, row: usize) -> Token;
    /// Drops the KV cells of `slot` from position `keep` on; false if the cache cannot do a
    /// partial removal (the caller then clears the whole slot with `keep = 0`).
    fn truncate_kv(&mut self, slot: usize, keep: u32) -> bool;
}

/// Loads models for worker threads.
pub trait BackendLoader: Send + Sync + 'static {
    /// Loads `spec` on the calling (worker) thread and runs `serve` with the backend until it
    /// returns; the model is freed afterwards.
    ///
    /// # Errors
    /// A message saying why the model could not be loaded.
    fn run(&self, spec: &LoadSpec, serve: &mut dyn FnMut(&mut dyn Backend)) -> Result<(), String>;
}
