//! The one place configuration is read: command-line flags, `HEARTH_*` environment variables
//! and an optional TOML file (`--config` / `HEARTH_CONFIG`). Precedence: a flag wins over its
//! variable, a variable over the file, the file over the default; each default is stated once,
//! here. A file key is the variable's name without `HEARTH_`, in lower case (`port = 9000`,
//! `api_keys_file = "/etc/hearth/keys"`).

use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand, ValueEnum};
use hearth_engine::{EngineSettings, KvType, SamplingDefaults};
use hearth_rag::location::StoreLocation;
use std::net::SocketAddr;
use std::path::PathBuf;

mod folders;
mod hub;
pub use folders::FolderArgs;
pub use hub::HubArgs;

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
#[allow(clippy::large_enum_variant, reason = "parsed once at startup; boxing buys nothing")]
pub enum Command {
    /// Serve the OpenAI-compatible HTTP API.
    Serve(ServeArgs),
    /// Download a GGUF model from the Hugging Face hub into the models folder (resumable,
    /// verified, sharing the hub's cache with Python tools).
    Pull(PullArgs),
    /// Chat with a model in the terminal (pulled first if it is a hub reference not here).
    Run(crate::run::RunArgs),
    /// List the models in the models folder (or a server's, with --url).
    List(crate::models_cli::ListArgs),
    /// List the models a server has loaded.
    Ps(crate::models_cli::PsArgs),
    /// Show a model's architecture, parameters, quantisation, context, template, capabilities.
    Show(crate::models_cli::ModelArg),
    /// Delete a model from the models folder (or a server's, with --url).
    Rm(crate::models_cli::ModelArg),
    /// Measure decode speed and time to first token (over HTTP and on the raw engine);
    /// `hearth bench embeddings` measures embedding throughput and latency.
    Bench(crate::bench::BenchArgs),
    /// Upload documents to a running server's collection (created if missing), with progress.
    Ingest(crate::cli_rag::IngestArgs),
    /// Search a running server's collection.
    Search(crate::cli_rag::SearchArgs),
    /// Print the SHA-256 of an API key read from standard input, for `name:sha256:HEX` lines of
    /// the keys file (so the file need not hold keys in clear).
    HashKey,
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
    /// API keys, rate limits, browser access.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// Retrieval over documents.
    #[command(flatten)]
    pub rag: RagArgs,
    /// Where `POST /api/pull` and `/models/pull` fetch models from.
    #[command(flatten)]
    pub hub: HubArgs,
}

/// `hearth pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// `OWNER/REPO`, `OWNER/REPO:QUANT` (default Q4_K_M) or `OWNER/REPO/FILE.gguf`, optionally
    /// after `hf.co/` and with `@REVISION`.
    pub reference: String,
    /// Hearth's folders (the model is linked into the models folder).
    #[command(flatten)]
    pub folders: FolderArgs,
    /// The hub.
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Retrieval over documents (collections, uploads, search).
#[derive(Debug, Clone, Args)]
pub struct RagArgs {
    /// The document store: a SQLite file, or `postgres://user:password@host:port/db` for
    /// PostgreSQL with pgvector (shared by several replicas). Default: $HEARTH_HOME/rag.sqlite.
    #[arg(long, env = "HEARTH_VECTOR_STORE")]
    pub vector_store: Option<String>,
    /// Embedding model for documents and queries. Default: all-MiniLM-L6-v2.Q8_0 if present,
    /// else the only embedding model; with none, retrieval is off.
    #[arg(long, env = "HEARTH_RAG_EMBEDDING_MODEL")]
    pub rag_embedding_model: Option<String>,
    /// Largest uploaded document (e.g. `32MiB`).
    #[arg(long, env = "HEARTH_MAX_UPLOAD_SIZE", default_value = "32MiB")]
    pub max_upload_size: String,
}

/// Logging.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log output format.
    #[arg(long, env = "HEARTH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax (e.g. `debug`, `info,hearth_engine=trace`).
    #[arg(long = "log", env = "HEARTH_LOG", default_value = "info,llama_cpp_2=warn,llama-cpp-2=warn")]
    pub filter: String,
    /// Also log prompt text (debug level). Off by default: prompts are private.
    #[arg(long, env = "HEARTH_LOG_PROMPTS", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub log_prompts: bool,
}

/// A secret from the command line or environment; never printed.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// API keys, rate limits and browser access.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// API key(s) clients must send as `Authorization: Bearer KEY` (comma-separated). With no
    /// key here and no keys file, the API is open to anyone who can reach the port.
    #[arg(long = "api-key", env = "HEARTH_API_KEY", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<Secret>,
    /// File of named keys, one per line: `name:key` or `name:sha256:HEX` (see `hearth
    /// hash-key`), optionally `:rpm=N:tpm=N` for that key's limits.
    #[arg(long, env = "HEARTH_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Answer /health, /health/live and /health/ready without a key (probes send none).
    #[arg(long, env = "HEARTH_PUBLIC_HEALTH", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub public_health: bool,
    /// Answer /metrics without a key (default: a key is needed, e.g. a scraper's bearer token).
    #[arg(long, env = "HEARTH_PUBLIC_METRICS", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub public_metrics: bool,
    /// Answer /openapi.json and /docs (Swagger UI) without a key.
    #[arg(long, env = "HEARTH_PUBLIC_DOCS", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub public_docs: bool,
    /// Requests per minute per key, for keys that set none (0 = unlimited).
    #[arg(long, env = "HEARTH_RATE_LIMIT_RPM", default_value_t = 0)]
    pub rate_limit_rpm: u32,
    /// Tokens (prompt + generated) per minute per key, for keys that set none (0 = unlimited).
    #[arg(long, env = "HEARTH_RATE_LIMIT_TPM", default_value_t = 0)]
    pub rate_limit_tpm: u64,
    /// Origins allowed to call from a browser (comma-separated, `*` for any). Default: none,
    /// so only pages served from the same origin can call.
    #[arg(long, env = "HEARTH_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
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
    /// Largest request body in bytes; larger is 413.
    #[arg(long, env = "HEARTH_MAX_BODY_BYTES", default_value_t = 8 << 20)]
    pub max_body_bytes: usize,
    /// Seconds a request may take in all (a stream gets an error event and ends after it).
    #[arg(long, env = "HEARTH_REQUEST_TIMEOUT", default_value_t = 600.0)]
    pub request_timeout: f64,
    /// Seconds running streams may go on after SIGTERM/SIGINT before they are cancelled (with a
    /// final error event). Keep it below Kubernetes' terminationGracePeriodSeconds.
    #[arg(long, env = "HEARTH_SHUTDOWN_GRACE", default_value_t = 30.0)]
    pub shutdown_grace: f64,
    /// Do not serve the browser UI at `/` (it is embedded in the binary; its page, scripts
    /// and styles are public, the API calls it makes need a key like any client's).
    #[arg(long, env = "HEARTH_NO_UI", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub no_ui: bool,
    /// A TOML file of settings (keys are variable names without `HEARTH_`, lower case).
    /// Flags and variables win over it.
    #[arg(long, env = "HEARTH_CONFIG")]
    pub config: Option<PathBuf>,
}

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
    #[arg(long, env = "HEARTH_MAX_LOADED_MODELS", default_value_t = 0)]
    pub max_loaded_models: usize,
    /// Memory for loaded models, estimated as file size plus KV cache (e.g. `8GiB`, `512MB`,
    /// bytes; 0 = no limit). Loading past it unloads least recently used idle models first.
    #[arg(long, env = "HEARTH_MEMORY_BUDGET", default_value = "0")]
    pub memory_budget: String,
    /// Unload a model this long after its last use (`30m`, `300`, `never`). A request's
    /// `keep_alive` overrides it for that model.
    #[arg(long, env = "HEARTH_IDLE_UNLOAD", default_value = "never")]
    pub idle_unload: String,
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
    #[arg(long, env = "HEARTH_KV_SIZE", default_value_t = 0)]
    pub kv_size: u32,
    /// Most tokens evaluated in one decode call; long prompts are split into chunks of this.
    #[arg(long, env = "HEARTH_BATCH_SIZE", default_value_t = 512)]
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
    #[arg(long, env = "HEARTH_KV_TYPE", value_enum, default_value_t = KvTypeArg::F16)]
    pub kv_type: KvTypeArg,
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
    /// Where models are pulled from.
    pub hub: hearth_hub::HubSettings,
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
    /// API keys (hashed) and which routes are public.
    pub auth: hearth_server::auth::AuthConfig,
    /// CORS origins.
    pub cors_origins: Vec<String>,
    /// How long running streams may finish after a shutdown signal.
    pub shutdown_grace: std::time::Duration,
    /// Serve the browser UI at `/`.
    pub ui: bool,
    /// Logging.
    pub log: LogArgs,
    /// The document store (its Debug and Display hide a password).
    pub vector_store: hearth_rag::location::StoreLocation,
    /// Embedding model for retrieval, if configured.
    pub rag_embedding_model: Option<String>,
    /// Largest uploaded document.
    pub max_upload_bytes: usize,
}

/// Bytes from `123`, `512MB`, `8GiB`, `1.5G` (K/M/G/T; `i` or a bare letter = powers of 1024,
/// `B` after a decimal prefix = powers of 1000).
fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let pow = |c: char| "kmgt".find(c).map(|i| i as i32 + 1);
    let mult = match unit.as_str() {
        "" | "b" => 1.0,
        u => {
            let mut chars = u.chars();
            let p = pow(chars.next()?)?;
            match chars.as_str() {
                "" | "i" | "ib" => 1024f64.powi(p),
                "b" => 1000f64.powi(p),
                _ => return None,
            }
        }
    };
    let v = n * mult;
    (0.0..1.8e19).contains(&v).then_some(v as u64)
}

fn idle_unload(s: &str) -> anyhow::Result<Option<std::time::Duration>> {
    if s.trim().eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    match hearth_engine::KeepAlive::parse(&serde_json::Value::String(s.into())) {
        Ok(hearth_engine::KeepAlive::For(d)) => Ok(Some(d)),
        Ok(_) => Ok(None),
        Err(_) => anyhow::bail!("--idle-unload must be a duration like 30m, seconds, or never"),
    }
}

fn seconds(flag: &str, v: f64) -> anyhow::Result<std::time::Duration> {
    anyhow::ensure!((0.0..1e9).contains(&v), "{flag} must be a number of seconds");
    Ok(std::time::Duration::from_secs_f64(v))
}

impl AuthArgs {
    /// The keys of `--api-key` and the keys file, hashed.
    fn config(&self) -> anyhow::Result<hearth_server::auth::AuthConfig> {
        let d = crate::keys::DefaultLimits { rpm: self.rate_limit_rpm, tpm: self.rate_limit_tpm };
        let mut keys: Vec<_> = self
            .api_keys
            .iter()
            .filter(|k| !k.0.trim().is_empty())
            .map(|k| crate::keys::from_flag(k.0.trim(), d))
            .collect();
        if let Some(path) = &self.api_keys_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read the API keys file {}: {e}", path.display()))?;
            let from_file = crate::keys::parse(&text, d)?;
            anyhow::ensure!(!from_file.is_empty(), "the API keys file {} holds no key", path.display());
            keys.extend(from_file);
        }
        // Keys own what they create by name: two keys must never share one.
        let mut names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            anyhow::bail!("two API keys are named {:?} (keys file and --api-key, or the same key twice)", w[0]);
        }
        Ok(hearth_server::auth::AuthConfig {
            keys,
            public_health: self.public_health,
            public_metrics: self.public_metrics,
            public_docs: self.public_docs,
        })
    }
}

/// `hearth serve`'s arguments with every default (for `hearth bench`'s in-process server, which
/// then sets what it measures), and no API keys.
///
/// # Errors
/// When a `HEARTH_*` variable in the environment holds a bad value.
pub fn bench_serve_args(models: &ModelArgs) -> anyhow::Result<ServeArgs> {
    let cli = Cli::try_parse_from(["hearth", "serve"])?;
    let Command::Serve(mut a) = cli.command else { anyhow::bail!("clap did not parse `serve`") };
    a.server.host = "127.0.0.1".into();
    a.server.port = 0;
    a.server.request_timeout = 3600.0;
    a.model = ModelArgs { default_model: None, allowed_models: vec![], aliases: vec![], ..models.clone() };
    a.scheduler.max_queue = 4096;
    a.scheduler.max_concurrent_requests = 4096;
    a.scheduler.queue_timeout = 3600.0;
    a.sampling = SamplingArgs { temperature: 0.0, top_p: 1.0, top_k: 0, min_p: 0.0, repeat_penalty: 1.0 };
    a.auth.api_keys.clear();
    a.auth.api_keys_file = None;
    Ok(a)
}

/// Every `HEARTH_*` variable `hearth serve` reads.
pub fn serve_env_vars() -> Vec<String> {
    let cli = Cli::command();
    let serve = cli.get_subcommands().find(|c| c.get_name() == "serve");
    serve
        .map(|c| c.get_arguments().filter_map(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Applies the TOML settings file, if one is named by `--config` in `args` or by
/// `HEARTH_CONFIG`: each key becomes its `HEARTH_*` variable unless that is already set, so
/// flags and variables keep precedence. Call before threads start.
///
/// # Errors
/// An unreadable file, bad TOML, or a key that is not a setting.
pub fn apply_config_file(args: &[String]) -> anyhow::Result<()> {
    let from_args = args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--config=")
            .map(str::to_string)
            .or_else(|| (a == "--config").then(|| args.get(i + 1).cloned()).flatten())
    });
    let Some(path) = from_args.or_else(|| std::env::var("HEARTH_CONFIG").ok()).filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read config file {path}: {e}"))?;
    for (var, value) in config_file_vars(&text, &serve_env_vars())? {
        if std::env::var_os(&var).is_none() {
            std::env::set_var(var, value);
        }
    }
    Ok(())
}

/// `(HEARTH_NAME, value)` for every key of a TOML settings file.
fn config_file_vars(text: &str, known: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let table: toml::Table = text.parse().map_err(|e| anyhow::anyhow!("config file: {e}"))?;
    table
        .into_iter()
        .map(|(k, v)| {
            let var = format!("HEARTH_{}", k.to_ascii_uppercase());
            anyhow::ensure!(known.contains(&var) && var != "HEARTH_CONFIG", "config file: unknown setting `{k}`");
            let value = match v {
                toml::Value::String(s) => s,
                toml::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            Ok((var, value))
        })
        .collect()
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

/// Cores available, the default thread count.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
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
        anyhow::ensure!(self.scheduler.parallel <= 256, "--parallel must be 0 (auto) or 1..=256");
        anyhow::ensure!((1..=65536).contains(&self.scheduler.batch_size), "--batch-size must be 1..=65536");
        let sch = &self.scheduler;
        anyhow::ensure!((1..=256).contains(&sch.embed_batch_inputs), "--embed-batch-inputs must be 1..=256");
        anyhow::ensure!((1..=65536).contains(&sch.embed_batch_tokens), "--embed-batch-tokens must be 1..=65536");
        anyhow::ensure!(self.scheduler.prefill_chunk >= 1, "--prefill-chunk must be at least 1");
        anyhow::ensure!(
            (1.0..=1000.0).contains(&self.scheduler.prefill_stretch),
            "--prefill-stretch must be a number from 1 to 1000"
        );
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
            hub: self.hub.settings(),
            models_dir: self.model.folders.models_dir(),
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
                prefill_stretch: self.scheduler.prefill_stretch,
                kv_type: self.scheduler.kv_type.into(),
                sampling,
                embed_batch_tokens: self.scheduler.embed_batch_tokens,
                embed_max_inputs: self.scheduler.embed_batch_inputs,
                max_loaded_models: self.model.max_loaded_models,
                memory_budget: parse_bytes(&self.model.memory_budget)
                    .ok_or_else(|| anyhow::anyhow!("--memory-budget must be bytes like 8GiB or 512MB"))?,
                idle_unload: idle_unload(&self.model.idle_unload)?,
            },
            limits: hearth_server::Limits {
                max_concurrent_requests: self.scheduler.max_concurrent_requests,
                queue_timeout: std::time::Duration::from_secs_f64(self.scheduler.queue_timeout),
                request_timeout: seconds("--request-timeout", self.server.request_timeout)?,
                max_body_bytes: self.server.max_body_bytes.max(1024),
            },
            auth: self.auth.config()?,
            cors_origins: self
                .auth
                .cors_origins
                .iter()
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect(),
            shutdown_grace: seconds("--shutdown-grace", self.server.shutdown_grace)?,
            ui: !self.server.no_ui,
            log: self.log,
            vector_store: self.rag.vector_store.filter(|s| !s.is_empty()).map_or_else(
                || StoreLocation::Sqlite(self.model.folders.home().join("rag.sqlite")),
                |s| StoreLocation::parse(&s),
            ),
            rag_embedding_model: self.rag.rag_embedding_model.filter(|m| !m.is_empty()),
            max_upload_bytes: parse_bytes(&self.rag.max_upload_size)
                .and_then(|b| usize::try_from(b).ok())
                .filter(|b| *b > 0)
                .ok_or_else(|| anyhow::anyhow!("--max-upload-size must be a size like 32MiB"))?,
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
            _ => anyhow::bail!("not serve"),
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
        assert!(parse(&["serve", "--parallel", "257"]).is_err());
        assert_eq!(parse(&["serve"]).unwrap().engine.parallel, 0, "automatic by default");
        assert!(parse(&["serve", "--alias", "nope"]).is_err());
        assert!(parse(&["serve", "--host", "not an ip"]).is_err());
        assert!(parse(&["serve", "--temperature", "9"]).is_err());
        assert!(parse(&["serve", "--embed-batch-tokens", "0"]).is_err());
        assert!(parse(&["serve", "--api-keys-file", "/nonexistent/keys"]).is_err());
        assert!(parse(&["serve", "--request-timeout", "-1"]).is_err());
        assert!(parse(&["serve", "--embed-batch-inputs", "300"]).is_err(), "llama.cpp's sequence limit");
    }

    #[test]
    fn lifecycle_settings() {
        let s =
            parse(&["serve", "--memory-budget", "1.5GiB", "--idle-unload", "30m", "--max-loaded-models", "2"]).unwrap();
        assert_eq!(s.engine.memory_budget, 1_610_612_736);
        assert_eq!(s.engine.idle_unload, Some(std::time::Duration::from_secs(1800)));
        assert_eq!(s.engine.max_loaded_models, 2);
        assert_eq!(parse_bytes("512MB"), Some(512_000_000));
        assert_eq!(parse_bytes("8G"), Some(8 << 30));
        assert_eq!(parse_bytes("0"), Some(0));
        assert!(parse(&["serve", "--memory-budget", "lots"]).is_err());
        assert!(parse(&["serve", "--idle-unload", "soon"]).is_err());
        assert_eq!(parse(&["serve"]).unwrap().engine.idle_unload, None);
    }

    #[test]
    fn keys_are_hashed_and_redacted() {
        let s = parse(&[
            "serve",
            "--api-key",
            "sk-one,sk-two",
            "--public-health",
            "false",
            "--vector-store",
            "postgres://hearth:db-s3cret@db:5432/rag",
        ])
        .unwrap();
        assert_eq!(s.auth.keys.len(), 2);
        assert!(!s.auth.public_health);
        let shown = format!("{s:?}");
        assert!(!shown.contains("sk-one") && !shown.contains("sk-two"), "secrets never in Debug");
        assert!(!shown.contains("db-s3cret") && shown.contains("postgres://hearth:***@db:5432/rag"), "{shown}");
    }

    #[test]
    fn config_file_keys_map_to_variables() {
        let known = serve_env_vars();
        let vars =
            config_file_vars("port = 9000\ncors_origins = [\"a\", \"b\"]\npublic_health = false", &known).unwrap();
        assert!(vars.contains(&("HEARTH_PORT".into(), "9000".into())));
        assert!(vars.contains(&("HEARTH_CORS_ORIGINS".into(), "a,b".into())));
        assert!(vars.contains(&("HEARTH_PUBLIC_HEALTH".into(), "false".into())));
        assert!(config_file_vars("nope = 1", &known).is_err());
        assert!(config_file_vars("port = ", &known).is_err());
    }

    #[test]
    fn env_example_lists_every_variable() {
        let example = include_str!("../../../../.env.example");
        let listed: Vec<&str> = example
            .lines()
            .filter_map(|l| l.trim_start_matches('#').trim().split_once('='))
            .map(|(k, _)| k.trim())
            .filter(|k| k.starts_with("HEARTH_") || k.starts_with("HF_"))
            .collect();
        for var in serve_env_vars() {
            assert!(listed.contains(&var.as_str()), ".env.example lacks {var}");
        }
        for var in listed {
            assert!(serve_env_vars().iter().any(|v| v == var), ".env.example lists unknown {var}");
        }
    }
}
