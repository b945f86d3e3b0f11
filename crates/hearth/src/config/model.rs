//! Models: where they are, how they are loaded and scheduled, and sampling defaults.

use super::units::{Bytes, IdleUnload};
use super::FolderArgs;
use clap::{Args, ValueEnum};
use hearth_engine::gpu::{GpuLayers, GpuPlan};
use hearth_engine::process::{Isolation, WorkerProgram};
use hearth_engine::{EngineSettings, KvType, SamplingDefaults};
use hearth_server::Limits;

/// Models: where they are and how they are loaded.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Hearth's folders.
    #[command(flatten)]
    pub folders: FolderArgs,
    /// Model used when a request names none. Default: the only chat model, if there is one.
    #[arg(long, env = "HEARTH_DEFAULT_MODEL")]
    pub default_model: Option<String>,
    /// Comma-separated model ids to serve; others in the directory are ignored. Default: all.
    #[arg(long, env = "HEARTH_ALLOWED_MODELS", value_delimiter = ',')]
    pub allowed_models: Vec<String>,
    /// Comma-separated aliases, `alias=model-id` (e.g. `smollm2=SmolLM2-135M-Instruct.Q4_1`).
    #[arg(long = "alias", env = "HEARTH_ALIASES", value_delimiter = ',')]
    pub aliases: Vec<String>,
    /// Context window per sequence, in tokens; 0 = the model's training context, capped at 4096,
    /// and smaller (to no less than 2048) when not even one window fits in half the available
    /// memory (see --parallel). Larger windows take more memory: the KV cache holds ctx-size x
    /// parallel tokens.
    #[arg(long, env = "HEARTH_CTX_SIZE", default_value_t = EngineSettings::default().ctx_size)]
    pub ctx_size: u32,
    /// CPU threads for llama.cpp. Default: all cores. More threads than cores slows decoding.
    #[arg(long, env = "HEARTH_THREADS")]
    pub threads: Option<usize>,
    /// Models loaded at once (0 = no limit). Loading another unloads the least recently used
    /// idle one; if every loaded model is busy the request gets 503.
    #[arg(long, env = "HEARTH_MAX_LOADED_MODELS", default_value_t = EngineSettings::default().max_loaded_models)]
    pub max_loaded_models: usize,
    /// Memory for loaded models, estimated as file size plus KV cache (e.g. `8GiB`, `512MB`,
    /// bytes; 0 = no limit). Loading past it unloads least recently used idle models first.
    #[arg(long, env = "HEARTH_MEMORY_BUDGET", default_value_t = Bytes(EngineSettings::default().memory_budget))]
    pub memory_budget: Bytes,
    /// Unload a model this long after its last use (`30m`, `300`, `never`). A request's
    /// `keep_alive` overrides it for that model.
    #[arg(long, env = "HEARTH_IDLE_UNLOAD", default_value_t = IdleUnload(EngineSettings::default().idle_unload))]
    pub idle_unload: IdleUnload,
    /// Where each loaded model runs: `process` (a worker process per model, so a crash in
    /// llama.cpp ends only that model's requests and the model is loaded again) or `thread`
    /// (in the server's process: slightly less memory, but one bad model or request can end
    /// the whole server).
    #[arg(long, env = "HEARTH_ISOLATION", value_enum, default_value_t = IsolationArg::Process)]
    pub isolation: IsolationArg,
    /// Layers of each model on the GPU: `auto` (as many as fit the devices' free memory after
    /// the KV cache and --gpu-margin; none without a GPU, and a GPU that fails falls back to
    /// the CPU with a warning), `all`, or a number (an explicit count that cannot be honoured
    /// is a load error). Needs a GPU build (HEARTH_GPU=vulkan|cuda|metal scripts/run).
    #[arg(long, env = "HEARTH_GPU_LAYERS", default_value_t = GpuPlan::default().layers, value_parser = GpuLayers::parse)]
    pub gpu_layers: GpuLayers,
    /// `ID=LAYERS` pairs (comma-separated) over --gpu-layers for single models; the settings
    /// file's `[models."ID"]` tables set them as `gpu_layers = ...`.
    #[arg(long, env = "HEARTH_MODEL_GPU_LAYERS", value_delimiter = ',')]
    pub model_gpu_layers: Vec<String>,
    /// The GPU that holds what is not split across devices.
    #[arg(long, env = "HEARTH_MAIN_GPU", default_value_t = GpuPlan::default().main_gpu)]
    pub main_gpu: u32,
    /// Device memory left free on each GPU when fitting `auto` (e.g. `1GiB`).
    #[arg(long, env = "HEARTH_GPU_MARGIN", default_value_t = Bytes(GpuPlan::default().margin_bytes))]
    pub gpu_margin: Bytes,
    /// Keep every model on the CPU (the same as --gpu-layers 0).
    #[arg(long, env = "HEARTH_NO_GPU", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub no_gpu: bool,
}

/// `--isolation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsolationArg {
    /// A worker process per loaded model.
    Process,
    /// A worker thread in the server's process.
    Thread,
}

/// The engine's isolation for `arg`: worker processes run this binary's hidden `worker`
/// command, logging as the server does.
///
/// # Errors
/// When this program's own path cannot be found.
pub(super) fn isolation(arg: IsolationArg, log: &super::LogArgs) -> anyhow::Result<Isolation> {
    if arg == IsolationArg::Thread {
        return Ok(Isolation::Thread);
    }
    let program = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find this program's path for the model workers: {e}"))?;
    let format = match log.log_format {
        super::LogFormat::Text => "text",
        super::LogFormat::Json => "json",
    };
    let args =
        ["worker", "--log-format", format, "--log", &log.filter, "--parent-pid", &std::process::id().to_string()];
    Ok(Isolation::Process(WorkerProgram { program, args: args.iter().map(Into::into).collect() }))
}

/// Parallelism and limits.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Sequences decoded together per model. More raises aggregate throughput (batched decode)
    /// at some cost to each stream's speed and more KV memory. 0 = automatic: 4, or as many
    /// full windows as fit when the KV cache may take half of the memory available beside the
    /// model file (MemAvailable when the model loads, or --memory-budget when set); at least 1.
    #[arg(long, env = "HEARTH_PARALLEL", default_value_t = EngineSettings::default().parallel)]
    pub parallel: usize,
    /// KV cache cells shared by a model's sequences; 0 = ctx-size x parallel, so every sequence
    /// can always fill its window. Smaller saves memory: a request whose prompt plus max_tokens
    /// does not fit beside the running ones waits for room (never fails mid-generation).
    #[arg(long, env = "HEARTH_KV_SIZE", default_value_t = EngineSettings::default().kv_size)]
    pub kv_size: u32,
    /// Most tokens evaluated in one decode call; long prompts are split into chunks of this.
    #[arg(long, env = "HEARTH_BATCH_SIZE", default_value_t = EngineSettings::default().batch_size)]
    pub batch_size: usize,
    /// Most prompt tokens evaluated in a step while other streams are decoding; within it, the
    /// chunk is sized by --prefill-stretch. With no stream decoding, a prompt uses the whole
    /// batch.
    #[arg(long, env = "HEARTH_PREFILL_CHUNK", default_value_t = EngineSettings::default().prefill_chunk)]
    pub prefill_chunk: usize,
    /// While streams are decoding and a prompt is admitted, each step is sized from measured
    /// costs to take about this many times a plain decode step: running streams' tokens come
    /// that much slower until the prompt's first token. Smaller keeps them smoother; larger
    /// gets the prompt's first token sooner (BENCHMARKS.md has the trade-off measured).
    #[arg(long, env = "HEARTH_PREFILL_STRETCH", default_value_t = EngineSettings::default().prefill_stretch)]
    pub prefill_stretch: f64,
    /// Element type of the KV cache: `q8_0` takes about half the memory of `f16`, at some cost
    /// to prompt speed (BENCHMARKS.md).
    #[arg(long, env = "HEARTH_KV_TYPE", value_enum, default_value_t = KvTypeArg::from(EngineSettings::default().kv_type))]
    pub kv_type: KvTypeArg,
    /// Requests that may wait per model when all sequences are busy; beyond it, 429.
    #[arg(long, env = "HEARTH_MAX_QUEUE", default_value_t = EngineSettings::default().max_queue)]
    pub max_queue: usize,
    /// Generation requests in flight at once over all models (running or waiting); beyond it,
    /// 429 with Retry-After.
    #[arg(long, env = "HEARTH_MAX_CONCURRENT_REQUESTS", default_value_t = Limits::default().max_concurrent_requests)]
    pub max_concurrent_requests: usize,
    /// Seconds a request may wait for a free sequence before it gets 503.
    #[arg(long, env = "HEARTH_QUEUE_TIMEOUT", default_value_t = Limits::default().queue_timeout.as_secs_f64())]
    pub queue_timeout: f64,
    /// Server-wide cap on generated tokens per request. Default: up to the context window.
    #[arg(long = "max-tokens", env = "HEARTH_MAX_TOKENS")]
    pub max_tokens_cap: Option<u32>,
    /// Tokens packed into one embedding/rerank decode call, across the inputs of all waiting
    /// requests (a longer input goes alone). Attention in a packed call grows with the square
    /// of its tokens, so larger is not faster: 256 measured best for MiniLM (BENCHMARKS.md).
    /// Inputs up to the model's window (at most 2048 tokens, or this if larger) are accepted.
    #[arg(long, env = "HEARTH_EMBED_BATCH_TOKENS", default_value_t = EngineSettings::default().embed_batch_tokens)]
    pub embed_batch_tokens: usize,
    /// Inputs one embedding/rerank decode call evaluates at most.
    #[arg(long, env = "HEARTH_EMBED_BATCH_INPUTS", default_value_t = EngineSettings::default().embed_max_inputs)]
    pub embed_batch_inputs: usize,
}

/// Defaults for sampling fields a request leaves out.
#[derive(Debug, Args)]
pub struct SamplingArgs {
    /// Default temperature (0 = greedy).
    #[arg(long, env = "HEARTH_TEMPERATURE", default_value_t = SamplingDefaults::default().temperature)]
    pub temperature: f32,
    /// Default top_p.
    #[arg(long, env = "HEARTH_TOP_P", default_value_t = SamplingDefaults::default().top_p)]
    pub top_p: f32,
    /// Default top_k (0 = off).
    #[arg(long, env = "HEARTH_TOP_K", default_value_t = SamplingDefaults::default().top_k)]
    pub top_k: u32,
    /// Default min_p (0 = off).
    #[arg(long, env = "HEARTH_MIN_P", default_value_t = SamplingDefaults::default().min_p)]
    pub min_p: f32,
    /// Default repeat penalty (1 = off).
    #[arg(long, env = "HEARTH_REPEAT_PENALTY", default_value_t = SamplingDefaults::default().repeat_penalty)]
    pub repeat_penalty: f32,
}

/// `--kv-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KvTypeArg {
    /// 16-bit floats (llama.cpp's default).
    F16,
    /// 8-bit blocks: about 53% of f16's bytes.
    #[value(name = "q8_0")]
    Q8_0,
}

impl From<KvTypeArg> for KvType {
    fn from(k: KvTypeArg) -> Self {
        match k {
            KvTypeArg::F16 => KvType::F16,
            KvTypeArg::Q8_0 => KvType::Q8_0,
        }
    }
}

impl From<KvType> for KvTypeArg {
    fn from(k: KvType) -> Self {
        match k {
            KvType::F16 => KvTypeArg::F16,
            KvType::Q8_0 => KvTypeArg::Q8_0,
        }
    }
}

impl ModelArgs {
    /// `(alias, model id)` pairs of `--alias`.
    pub(super) fn alias_pairs(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.aliases
            .iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| {
                a.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| anyhow::anyhow!("--alias {a:?} must be alias=model-id"))
            })
            .collect()
    }
}

impl SamplingArgs {
    fn defaults(&self) -> anyhow::Result<SamplingDefaults> {
        let sampling = SamplingDefaults {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
        };
        hearth_engine::SamplingParams::validate(Default::default(), &sampling)
            .map_err(|e| anyhow::anyhow!("bad sampling default: {e}"))?;
        Ok(sampling)
    }
}

/// The engine's settings from the model, scheduler and sampling sections.
///
/// # Errors
/// A message naming the setting out of range.
pub(super) fn engine_settings(
    model: &ModelArgs,
    sch: &SchedulerArgs,
    sampling: &SamplingArgs,
    isolation: Isolation,
) -> anyhow::Result<EngineSettings> {
    anyhow::ensure!(sch.parallel <= 256, "--parallel must be 0 (auto) or 1..=256");
    anyhow::ensure!((1..=65536).contains(&sch.batch_size), "--batch-size must be 1..=65536");
    anyhow::ensure!((1..=256).contains(&sch.embed_batch_inputs), "--embed-batch-inputs must be 1..=256");
    anyhow::ensure!((1..=65536).contains(&sch.embed_batch_tokens), "--embed-batch-tokens must be 1..=65536");
    anyhow::ensure!(sch.prefill_chunk >= 1, "--prefill-chunk must be at least 1");
    anyhow::ensure!((1.0..=1000.0).contains(&sch.prefill_stretch), "--prefill-stretch must be a number from 1 to 1000");
    anyhow::ensure!(sch.max_queue >= 1, "--max-queue must be at least 1");
    anyhow::ensure!(model.ctx_size == 0 || model.ctx_size >= 64, "--ctx-size must be 0 (auto) or at least 64");
    let threads = model.threads.unwrap_or(EngineSettings::default().threads);
    anyhow::ensure!((1..=1024).contains(&threads), "--threads must be 1..=1024");
    Ok(EngineSettings {
        ctx_size: model.ctx_size,
        parallel: sch.parallel,
        kv_size: sch.kv_size,
        batch_size: sch.batch_size,
        threads,
        max_queue: sch.max_queue,
        max_tokens_cap: sch.max_tokens_cap,
        prefill_chunk: sch.prefill_chunk,
        prefill_stretch: sch.prefill_stretch,
        kv_type: sch.kv_type.into(),
        sampling: sampling.defaults()?,
        embed_batch_tokens: sch.embed_batch_tokens,
        embed_max_inputs: sch.embed_batch_inputs,
        max_loaded_models: model.max_loaded_models,
        memory_budget: model.memory_budget.0,
        idle_unload: model.idle_unload.0,
        isolation,
        gpu: GpuPlan {
            layers: if model.no_gpu { GpuLayers::Count(0) } else { model.gpu_layers },
            main_gpu: model.main_gpu,
            tensor_split: Vec::new(),
            margin_bytes: model.gpu_margin.0,
        },
        gpu_layers_of: model
            .model_gpu_layers
            .iter()
            .map(|pair| {
                let (id, layers) = pair
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--model-gpu-layers takes ID=LAYERS, got {pair:?}"))?;
                Ok((
                    id.trim().to_string(),
                    GpuLayers::parse(layers).map_err(|e| anyhow::anyhow!("--model-gpu-layers {id}: {e}"))?,
                ))
            })
            .collect::<anyhow::Result<_>>()?,
    })
}
