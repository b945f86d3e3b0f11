//! Where to listen, how long requests may take, and logging.

use clap::{ArgAction, Args, ValueEnum};
use hearth_server::Limits;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The log filter when none is set: Hearth's own lines, and only llama.cpp's warnings.
pub const LOG_FILTER: &str = "info,llama_cpp_2=warn,llama-cpp-2=warn";

/// The address `hearth serve` listens on by default.
const DEFAULT_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 8080;

/// The URL of a server on the default address: where the client commands look by default.
pub fn default_url() -> String {
    format!("http://{DEFAULT_HOST}:{DEFAULT_PORT}")
}

/// Where to listen.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to bind. 127.0.0.1 keeps the server private to this machine; 0.0.0.0 exposes it.
    #[arg(long, env = "HEARTH_HOST", default_value = DEFAULT_HOST)]
    pub host: String,
    /// TCP port.
    #[arg(long, env = "HEARTH_PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Largest request body in bytes; larger is 413.
    #[arg(long, env = "HEARTH_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Connections open at once (also held below the process's file limit). Beyond it new
    /// connections wait to be accepted until one closes.
    #[arg(long, env = "HEARTH_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers, from the connection's start or the
    /// end of its previous response: slow or idle connections are closed after it. A response
    /// being streamed is never cut by it.
    #[arg(long, env = "HEARTH_HEADER_TIMEOUT", default_value_t = Limits::default().header_timeout.as_secs_f64())]
    pub header_timeout: f64,
    /// Seconds a request may take in all (a stream gets an error event and ends after it).
    #[arg(long, env = "HEARTH_REQUEST_TIMEOUT", default_value_t = Limits::default().request_timeout.as_secs_f64())]
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

/// Logging.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log output format.
    #[arg(long, env = "HEARTH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax (e.g. `debug`, `info,hearth_engine=trace`).
    #[arg(long = "log", env = "HEARTH_LOG", default_value = LOG_FILTER)]
    pub filter: String,
    /// Also log prompt text (debug level). Off by default: prompts are private.
    #[arg(long, env = "HEARTH_LOG_PROMPTS", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub log_prompts: bool,
}

/// Log formats.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl ServerArgs {
    /// The address to bind (`--host` may be an IPv6 address without brackets).
    pub(super) fn addr(&self) -> anyhow::Result<SocketAddr> {
        format!("{}:{}", self.host, self.port)
            .parse()
            .or_else(|_| format!("[{}]:{}", self.host, self.port).parse())
            .map_err(|_| anyhow::anyhow!("--host {:?} is not an IP address", self.host))
    }
}

/// File descriptors kept for everything but client connections (model workers' pipes, model
/// files, the store, logs).
const RESERVED_FDS: u64 = 128;

/// `--max-connections`, held below the process's file limit (whose soft value is first raised
/// to the hard one), so that open connections can never take the descriptors the server needs.
///
/// # Errors
/// When the limit leaves no room for connections.
pub(super) fn connection_cap(requested: usize) -> anyhow::Result<usize> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    anyhow::ensure!(requested >= 1, "--max-connections must be at least 1");
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum
        && setrlimit(Resource::Nofile, rustix::process::Rlimit { current: limit.maximum, ..limit.clone() }).is_ok()
    {
        limit = getrlimit(Resource::Nofile);
    }
    let Some(soft) = limit.current else { return Ok(requested) };
    let room = soft.saturating_sub(RESERVED_FDS);
    anyhow::ensure!(room >= 1, "the file limit ({soft}) leaves no room for connections; raise it (ulimit -n)");
    let cap = requested.min(usize::try_from(room).unwrap_or(usize::MAX));
    if cap < requested {
        tracing::warn!(requested, cap, file_limit = soft, "--max-connections lowered to fit the file limit");
    }
    Ok(cap)
}
