//! Engine settings, validated by the binary's config module, and how a model is loaded under them.

use crate::backend::LoadSpec;
use crate::registry::{ModelInfo, ModelKind};
use crate::sampling::SamplingDefaults;
use std::time::Duration;

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
    /// Tokens packed into one embedding decode call (inputs of many requests together); an
    /// input longer than this still goes alone.
    pub embed_batch_tokens: usize,
    /// Inputs one embedding decode call evaluates.
    pub embed_max_inputs: usize,
    /// Models loaded at once (0 = no limit); the least recently used idle one is unloaded to
    /// make room.
    pub max_loaded_models: usize,
    /// Estimated bytes (file + KV cache) of all loaded models together (0 = no limit).
    pub memory_budget: u64,
    /// Unload a model this long after its last use (`None` = keep it loaded).
    pub idle_unload: Option<Duration>,
}

/// The longest embedding input accepted when it is not set larger by `embed_batch_tokens`
/// (a model's own window may be smaller): llama.cpp sizes its buffers for one input of this.
pub const MAX_EMBED_INPUT: usize = 2048;

impl EngineSettings {
    /// How `model` is loaded under these settings.
    pub fn load_spec(&self, model: ModelInfo) -> LoadSpec {
        let threads = self.threads.max(1);
        if model.kind == ModelKind::Embedding {
            // One input must fit one micro-batch (non-causal attention), so the context holds
            // the model's window (up to MAX_EMBED_INPUT) even when calls are packed smaller;
            // llama.cpp also wants it to divide evenly into sequences.
            let n_slots = self.embed_max_inputs.max(1);
            let window = (model.n_ctx_train as usize).min(MAX_EMBED_INPUT);
            let longest = self.embed_batch_tokens.max(window).max(1);
            let n_batch = longest.div_ceil(n_slots) * n_slots;
            return LoadSpec {
                n_ctx: model.n_ctx_train.min(longest as u32).max(1),
                n_kv: n_batch as u32,
                n_slots,
                n_batch,
                threads,
                pooling: model.pooling.unwrap_or_default(),
                model,
            };
        }
        let ctx = if self.ctx_size == 0 { model.n_ctx_train.min(4096) } else { self.ctx_size.min(model.n_ctx_train) };
        let n_ctx = ctx.max(16);
        let n_slots = self.parallel.max(1);
        let n_kv = match self.kv_size {
            0 => n_ctx.saturating_mul(n_slots as u32),
            kv => kv.max(n_ctx),
        };
        LoadSpec { model, n_ctx, n_kv, n_slots, n_batch: self.batch_size.max(1), threads, pooling: Default::default() }
    }
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
            embed_batch_tokens: 256,
            embed_max_inputs: 32,
            max_loaded_models: 0,
            memory_budget: 0,
            idle_unload: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::TemplateSource;

    fn bert(n_ctx_train: u32) -> ModelInfo {
        ModelInfo {
            id: "e".into(),
            path: "/e.gguf".into(),
            arch: "bert".into(),
            n_params: 0,
            quant: "F16".into(),
            n_ctx_train,
            template: TemplateSource::Builtin("chatml"),
            kind: ModelKind::Embedding,
            pooling: Some(crate::backend::Pooling::Mean),
            n_embd: 384,
            kv_bytes_per_token: 0,
            size_bytes: 0,
            created: 0,
        }
    }

    #[test]
    fn embedding_context_holds_one_window_and_divides_into_sequences() {
        let s = EngineSettings { embed_batch_tokens: 256, embed_max_inputs: 48, ..Default::default() };
        let spec = s.load_spec(bert(512));
        assert_eq!((spec.n_batch, spec.n_ctx, spec.n_slots), (528, 512, 48));
        assert_eq!(spec.n_batch % spec.n_slots, 0, "llama.cpp asserts on this");
        let spec = s.load_spec(bert(32_768));
        assert_eq!(spec.n_ctx as usize, MAX_EMBED_INPUT, "long windows are capped");
        let big = EngineSettings { embed_batch_tokens: 4096, embed_max_inputs: 32, ..Default::default() };
        assert_eq!(big.load_spec(bert(32_768)).n_ctx, 4096, "a larger batch admits longer inputs");
    }
}
