//! Engine settings, validated by the binary's config module, and how a model is loaded under them.

use crate::backend::{KvType, LoadSpec};
use crate::registry::{ModelInfo, ModelKind};
use crate::sampling::SamplingDefaults;
use std::time::Duration;

/// Engine settings, validated by the binary's config module.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Context window per sequence; 0 = the model's training context, capped at 4096.
    pub ctx_size: u32,
    /// Sequences decoded together per model; 0 = [`AUTO_PARALLEL`], or fewer when memory is
    /// short (see [`EngineSettings::load_spec`]).
    pub parallel: usize,
    /// KV cache cells shared by a model's sequences; 0 = context size x parallel (every
    /// sequence can always fill its window). Smaller saves memory: a request whose prompt plus
    /// max_tokens does not fit next to the running ones waits.
    pub kv_size: u32,
    /// Most tokens per decode call.
    pub batch_size: usize,
    /// CPU threads for llama.cpp (default: every core available).
    pub threads: usize,
    /// Requests that may wait for a model's worker before new ones get `Overloaded`.
    pub max_queue: usize,
    /// Server-wide cap on generated tokens per request.
    pub max_tokens_cap: Option<u32>,
    /// Most prompt tokens evaluated per step while other sequences are decoding (chunked
    /// prefill).
    pub prefill_chunk: usize,
    /// While sequences are decoding, a step that admits a prompt chunk is sized (from measured
    /// step costs) to take about this many times a plain decode step: the running streams' gap
    /// while a long prompt is admitted. Larger admits the prompt sooner.
    pub prefill_stretch: f64,
    /// KV cache element type of generative models.
    pub kv_type: KvType,
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
    /// Where each loaded model's worker runs: a thread here, or a process of its own.
    pub isolation: crate::process::Isolation,
    /// GPU placement of every model.
    pub gpu: crate::gpu::GpuPlan,
    /// `--gpu-layers` of single models (the settings file's `[models."ID"]`), over `gpu`.
    pub gpu_layers_of: Vec<(String, crate::gpu::GpuLayers)>,
}

/// The longest embedding input accepted when it is not set larger by `embed_batch_tokens`
/// (a model's own window may be smaller): llama.cpp sizes its buffers for one input of this.
pub const MAX_EMBED_INPUT: usize = 2048;

/// Sequences of a generative model when `parallel` is 0 and memory allows.
pub(crate) const AUTO_PARALLEL: usize = 4;
/// The smallest window an automatic context size shrinks to for lack of memory.
pub(crate) const MIN_AUTO_CTX: u32 = 2048;

impl EngineSettings {
    /// How `model` is loaded under these settings, with `available` bytes of memory (`None`:
    /// unknown) when it loads.
    ///
    /// The KV cache may take half of what is available beside the model file. Within that,
    /// `parallel = 0` runs [`AUTO_PARALLEL`] sequences, or as many as fit with the full
    /// window each (at least one), and `ctx_size = 0` (the model's window, at most 4096)
    /// shrinks when not even one window fits, to no less than [`MIN_AUTO_CTX`]. Sizes the user
    /// set are kept as they are.
    pub fn load_spec(&self, model: ModelInfo, available: Option<u64>) -> LoadSpec {
        let threads = self.threads.max(1);
        let mut gpu = self.gpu.clone();
        if let Some((_, layers)) = self.gpu_layers_of.iter().find(|(id, _)| *id == model.id) {
            gpu.layers = *layers;
        }
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
                kv_type: KvType::F16,
                gpu,
                model,
            };
        }
        let ctx = if self.ctx_size == 0 { model.n_ctx_train.min(4096) } else { self.ctx_size.min(model.n_ctx_train) };
        let per_token = self.kv_type.bytes(model.kv_bytes_per_token).max(1);
        let room = available.map(|a| a.saturating_sub(model.size_bytes) / 2);
        let windows = |ctx: u32| room.map_or(u64::MAX, |r| r / (u64::from(ctx.max(1)) * per_token));
        let mut n_ctx = ctx.max(16);
        if let (0, Some(r), 0) = (self.ctx_size, room, windows(n_ctx)) {
            n_ctx = u32::try_from(r / per_token).unwrap_or(u32::MAX).clamp(MIN_AUTO_CTX.min(n_ctx), n_ctx);
        }
        let n_slots = match self.parallel {
            0 if self.kv_size == 0 => windows(n_ctx).clamp(1, AUTO_PARALLEL as u64) as usize,
            0 => AUTO_PARALLEL,
            p => p,
        };
        let n_kv = match self.kv_size {
            0 => n_ctx.saturating_mul(n_slots as u32),
            kv => kv.max(n_ctx),
        };
        LoadSpec {
            model,
            n_ctx,
            n_kv,
            n_slots,
            n_batch: self.batch_size.max(1),
            threads,
            pooling: Default::default(),
            kv_type: self.kv_type,
            gpu,
        }
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            ctx_size: 0,
            parallel: 0,
            kv_size: 0,
            batch_size: 512,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_queue: 64,
            max_tokens_cap: None,
            prefill_chunk: 512,
            prefill_stretch: 8.0,
            kv_type: KvType::F16,
            sampling: SamplingDefaults::default(),
            embed_batch_tokens: 256,
            embed_max_inputs: 32,
            max_loaded_models: 0,
            memory_budget: 0,
            idle_unload: None,
            isolation: crate::process::Isolation::Thread,
            gpu: crate::gpu::GpuPlan::default(),
            gpu_layers_of: Vec::new(),
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
        let spec = s.load_spec(bert(512), None);
        assert_eq!((spec.n_batch, spec.n_ctx, spec.n_slots), (528, 512, 48));
        assert_eq!(spec.n_batch % spec.n_slots, 0, "llama.cpp asserts on this");
        let spec = s.load_spec(bert(32_768), None);
        assert_eq!(spec.n_ctx as usize, MAX_EMBED_INPUT, "long windows are capped");
        let big = EngineSettings { embed_batch_tokens: 4096, embed_max_inputs: 32, ..Default::default() };
        assert_eq!(big.load_spec(bert(32_768), None).n_ctx, 4096, "a larger batch admits longer inputs");
    }

    /// A generative model of 100 MB whose KV cache takes 1000 bytes a token (f16).
    fn causal() -> ModelInfo {
        ModelInfo {
            kind: ModelKind::Causal,
            pooling: None,
            n_ctx_train: 8192,
            kv_bytes_per_token: 1000,
            size_bytes: 100_000_000,
            ..bert(0)
        }
    }

    #[test]
    fn automatic_parallel_and_context_fit_half_the_free_memory() {
        let auto = EngineSettings::default();
        let spec = |s: &EngineSettings, avail: Option<u64>| {
            let l = s.load_spec(causal(), avail);
            (l.n_slots, l.n_ctx, l.n_kv)
        };
        assert_eq!(spec(&auto, None), (AUTO_PARALLEL, 4096, 4 * 4096), "unknown memory: the defaults");
        assert_eq!(spec(&auto, Some(1 << 40)), (4, 4096, 16_384), "plenty: four full windows");
        // 100 MB file + 2 x 12.3 MB: room for three 4096-token windows (4.1 MB each).
        assert_eq!(spec(&auto, Some(100_000_000 + 2 * 12_300_000)).0, 3);
        assert_eq!(spec(&auto, Some(100_000_000 + 2 * 3_000_000)), (1, 3000, 3000), "the window shrinks");
        assert_eq!(spec(&auto, Some(100_000_000)), (1, MIN_AUTO_CTX, MIN_AUTO_CTX), "not below the floor");
        let q8 = EngineSettings { kv_type: KvType::Q8_0, ..auto.clone() };
        assert_eq!(spec(&q8, Some(100_000_000 + 2 * 12_300_000)).0, 4, "q8_0 fits more");
        let set = EngineSettings { parallel: 8, ctx_size: 4096, ..auto };
        assert_eq!(spec(&set, Some(100_000_000)), (8, 4096, 8 * 4096), "what the user set is kept");
    }
}
