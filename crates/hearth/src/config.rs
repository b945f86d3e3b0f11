//! The one place configuration is read: command-line flags and `HEARTH_*` environment
//! variables (a flag wins over its variable; each default is stated once, here).

use clap::{Args, Parser, Subcommand, ValueEnum};
use hearth_engine::{EngineSettings, SamplingDefaults};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Hearth: serve GGUF models behind an OpenAI-compatible API.
#[derive(Debug, Parser)]
#[command(name = "hearth", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the OpenAI-compatible HTTP API.
    Serve(ServeArgs),
    /// Measure decode speed and time to first token (over HTTP and on the raw engine);
    /// `hearth bench embeddings` measures embedding throughput and latency.
    Bench(crate::bench::BenchArgs),
}

/// `hearth serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listening address.
    #[command(flatten)]
    pub server: ServerArgs,
    /// Which models and how they are loaded.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Parallelism and limits.
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
    /// Sampling defaults.
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Log output format.
    #[arg(long, env = "HEARTH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Log formats.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where to listen.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to bind. 127.0.0.1 keeps the server private to this machine; 0.0.0.0 exposes it.
    #[arg(long, env = "HEARTH_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// TCP port.
    #[arg(long, env = "HEARTH_PORT", default_value_t = 8080)]
    pub port: u16,
}

/// Models: where they are and how they are loaded.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Hearth's home directory (models, caches). Default: ~/.cache/hearth.
    #[arg(long, env = "HEARTH_HOME")]
    pub home: Option<PathBuf>,
    /// Directory scanned for *.gguf files. Default: $HEARTH_HOME/models.
    #[arg(long, env = "HEARTH_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Model used when a request names none. Default: the only chat model, if there is one.
    #[arg(long, env = "HEARTH_DEFAULT_MODEL")]
    pub default_model: Option<String>,
    /// Comma-separated model ids to serve; others in the directory are ignored. Default: all.
    #[arg(long, env = "HEARTH_ALLOWED_MODELS", value_delimiter = ',')]
    pub allowed_models: Vec<String>,
    /// Comma-separated aliases, `alias=model-id` (e.g. `smollm2=SmolLM2-135M-Instruct.Q4_1`).
    #[arg(long = "alias", env = "HEARTH_ALIASES", value_delimiter = ',')]
    pub aliases: Vec<String>,
    /// Context window per sequence, in tokens; 0 = the model's training context, capped at 4096.
    /// Larger windows take more memory: the KV cache holds ctx-size x parallel tokens.
    #[arg(long, env = "HEARTH_CTX_SIZE", default_value_t = 0)]
    pub ctx_size: u32,
    /// CPU threads for llama.cpp. Default: all cores. More threads than cores slows decoding.
    #[arg(long, env = "HEARTH_THREADS")]
    pub threads: Option<usize>,
}

/// Parallelism and limits.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Sequences decoded together per model. More raises aggregate throughput (batched decode)
    /// at some cost to each stream's speed and more KV memory.
    #[arg(long, env = "HEARTH_PARALLEL", default_value_t = 4)]
    pub parallel: usize,
    /// KV cache cells shared by a model's sequences; 0 = ctx-size x parallel, so every sequence
    /// can always fill its window. Smaller saves memory: a request whose prompt plus max_tokens
    /// does not fit beside the running ones waits for room (never fails mid-generation).
    #[arg(long, env = "HEARTH_KV_SIZE", default_value_t = 0)]
    pub kv_size: u32,
    /// Most tokens evaluated in one decode call; long prompts are split into chunks of this.
    #[arg(long, env = "HEARTH_BATCH_SIZE", default_value_t = 512)]
    pub batch_size: usize,
    /// Prompt tokens evaluated per step while other streams are decoding. Smaller keeps running
    /// streams smoother while a long prompt is admitted; larger gets that prompt's first token
    /// sooner (BENCHMARKS.md has the trade-off measured). With no stream decoding, a prompt uses
    /// the whole batch.
    #[arg(long, env = "HEARTH_PREFILL_CHUNK", default_value_t = 128)]
    pub prefill_chunk: usize,
    /// Requests that may wait per model when all sequences are busy; beyond it, 429.
    #[arg(long, env = "HEARTH_MAX_QUEUE", default_value_t = 64)]
    pub max_queue: usize,
    /// Generation requests in flight at once over all models (running or waiting); beyond it,
    /// 429 with Retry-After.
    #[arg(long, env = "HEARTH_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// Seconds a request may wait for a free sequence before it gets 503.
    #[arg(long, env = "HEARTH_QUEUE_TIMEOUT", default_value_t = 60.0)]
    pub queue_timeout: f64,
    /// Server-wide cap on generated tokens per request. Default: up to the context window.
    #[arg(long = "max-tokens", env = "HEARTH_MAX_TOKENS")]
    pub max_tokens_cap: Option<u32>,
    /// Tokens packed into one embedding/rerank decode call, across the inputs of all waiting
    /// requests (a longer input goes alone). Attention in a packed call grows with the square
    /// of its tokens, so larger is not faster: 256 measured best for MiniLM (BENCHMARKS.md).
    /// Inputs up to the model's window (at most 2048 tokens, or this if larger) are accepted.
    #[arg(long, env = "HEARTH_EMBED_BATCH_TOKENS", default_value_t = 256)]
    pub embed_batch_tokens: usize,
    /// Inputs one embedding/rerank decode call evaluates at most.
    #[arg(long, env = "HEARTH_EMBED_BATCH_INPUTS", default_value_t = 32)]
    pub embed_batch_inputs: usize,
}

/// Defaults for sampling fields a request leaves out.
#[derive(Debug, Args)]
pub struct SamplingArgs {
    /// Default temperature (0 = greedy).
    #[arg(long, env = "HEARTH_TEMPERATURE", default_value_t = 0.8)]
    pub temperature: f32,
    /// Default top_p.
    #[arg(long, env = "HEARTH_TOP_P", default_value_t = 0.95)]
    pub top_p: f32,
    /// Default top_k (0 = off).
    #[arg(long, env = "HEARTH_TOP_K", default_value_t = 40)]
    pub top_k: u32,
    /// Default min_p (0 = off).
    #[arg(long, env = "HEARTH_MIN_P", default_value_t = 0.05)]
    pub min_p: f32,
    /// Default repeat penalty (1 = off).
    #[arg(long, env = "HEARTH_REPEAT_PENALTY", default_value_t = 1.0)]
    pub repeat_penalty: f32,
}

/// Settings after validation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Models directory.
    pub models_dir: PathBuf,
    /// Default model.
    pub default_model: Option<String>,
    /// Allowed model ids.
    pub allowed_models: Vec<String>,
    /// (alias, id) pairs.
    pub aliases: Vec<(String, String)>,
    /// Engine settings.
    pub engine: EngineSettings,
    /// Admission limits of the HTTP layer.
    pub limits: hearth_server::Limits,
}

/// `$HEARTH_HOME` as configured, else ~/.cache/hearth.
pub fn home_dir(home: Option<PathBuf>) -> PathBuf {
    home.unwrap_or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".cache/hearth")
    })
}

/// Cores available, the default thread count.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl ModelArgs {
    /// The models directory.
    pub fn models_dir(&self) -> PathBuf {
        self.models_dir.clone().unwrap_or_else(|| home_dir(self.home.clone()).join("models"))
    }
}

impl ServeArgs {
    /// Validates the arguments into [`Settings`].
    ///
    /// # Errors
    /// A message naming the bad setting.
    pub fn validate(self) -> anyhow::Result<Settings> {
        let addr: SocketAddr = format!("{}:{}", self.server.host, self.server.port)
            .parse()
            .or_else(|_| format!("[{}]:{}", self.server.host, self.server.port).parse())
            .map_err(|_| anyhow::anyhow!("--host {:?} is not an IP address", self.server.host))?;
        let aliases = self
            .model
            .aliases
            .iter()
            .filter(|a| !a.trim().is_empty())
            .map(|a| {
                a.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| anyhow::anyhow!("--alias {a:?} must be alias=model-id"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!((1..=256).contains(&self.scheduler.parallel), "--parallel must be 1..=256");
        anyhow::ensure!((1..=65536).contains(&self.scheduler.batch_size), "--batch-size must be 1..=65536");
        let sch = &self.scheduler;
        anyhow::ensure!((1..=256).contains(&sch.embed_batch_inputs), "--embed-batch-inputs must be 1..=256");
        anyhow::ensure!((1..=65536).contains(&sch.embed_batch_tokens), "--embed-batch-tokens must be 1..=65536");
        anyhow::ensure!(self.scheduler.prefill_chunk >= 1, "--prefill-chunk must be at least 1");
        anyhow::ensure!(self.scheduler.max_queue >= 1, "--max-queue must be at least 1");
        anyhow::ensure!(self.scheduler.max_concurrent_requests >= 1, "--max-concurrent-requests must be at least 1");
        anyhow::ensure!(
            self.scheduler.queue_timeout.is_finite() && self.scheduler.queue_timeout > 0.0,
            "--queue-timeout must be a positive number of seconds"
        );
        anyhow::ensure!(
            self.model.ctx_size == 0 || self.model.ctx_size >= 64,
            "--ctx-size must be 0 (auto) or at least 64"
        );
        let threads = self.model.threads.unwrap_or_else(default_threads);
        anyhow::ensure!((1..=1024).contains(&threads), "--threads must be 1..=1024");
        let s = &self.sampling;
        let sampling = SamplingDefaults {
            temperature: s.temperature,
            top_p: s.top_p,
            top_k: s.top_k,
            min_p: s.min_p,
            repeat_penalty: s.repeat_penalty,
        };
        hearth_engine::SamplingParams::validate(Default::default(), &sampling)
            .map_err(|e| anyhow::anyhow!("bad sampling default: {e}"))?;
        Ok(Settings {
            addr,
            models_dir: self.model.models_dir(),
            default_model: self.model.default_model.filter(|m| !m.is_empty()),
            allowed_models: self.model.allowed_models.into_iter().filter(|m| !m.is_empty()).collect(),
            aliases,
            engine: EngineSettings {
                ctx_size: self.model.ctx_size,
                parallel: self.scheduler.parallel,
                kv_size: self.scheduler.kv_size,
                batch_size: self.scheduler.batch_size,
                threads,
                max_queue: self.scheduler.max_queue,
                max_tokens_cap: self.scheduler.max_tokens_cap,
                prefill_chunk: self.scheduler.prefill_chunk,
                sampling,
                embed_batch_tokens: self.scheduler.embed_batch_tokens,
                embed_max_inputs: self.scheduler.embed_batch_inputs,
            },
            limits: hearth_server::Limits {
                max_concurrent_requests: self.scheduler.max_concurrent_requests,
                queue_timeout: std::time::Duration::from_secs_f64(self.scheduler.queue_timeout),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Settings> {
        let cli = Cli::try_parse_from(std::iter::once("hearth").chain(args.iter().copied()))?;
        match cli.command {
            Command::Serve(s) => s.validate(),
            Command::Bench(_) => anyhow::bail!("not serve"),
        }
    }

    #[test]
    fn flags_parse_and_validate() {
        let s =
            parse(&["serve", "--port", "9000", "--alias", "a=b,c=d", "--parallel", "8", "--models-dir", "/m"]).unwrap();
        assert_eq!(s.addr.port(), 9000);
        assert_eq!(s.aliases, vec![("a".into(), "b".into()), ("c".into(), "d".into())]);
        assert_eq!(s.engine.parallel, 8);
        assert_eq!(s.models_dir, PathBuf::from("/m"));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["serve", "--parallel", "0"]).is_err());
        assert!(parse(&["serve", "--alias", "nope"]).is_err());
        assert!(parse(&["serve", "--host", "not an ip"]).is_err());
        assert!(parse(&["serve", "--temperature", "9"]).is_err());
        assert!(parse(&["serve", "--embed-batch-tokens", "0"]).is_err());
        assert!(parse(&["serve", "--embed-batch-inputs", "300"]).is_err(), "llama.cpp's sequence limit");
    }
}
