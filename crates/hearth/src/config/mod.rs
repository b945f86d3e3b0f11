//! The one place configuration is read: command-line flags, `HEARTH_*` environment variables
//! and an optional TOML file (`--config` / `HEARTH_CONFIG`, see [`file`]). Precedence: a flag
//! wins over its variable, a variable over the file, the file over the default. Each default is
//! stated once: the engine's, sampling's and the HTTP layer's are their crates' `Default`s
//! (`EngineSettings`, `SamplingDefaults`, `Limits`), which the flags show; the rest are stated
//! on their flag. One module per concern; this one joins them into [`Settings`].

use clap::Args;
use hearth_engine::EngineSettings;
use std::net::SocketAddr;
use std::path::PathBuf;

mod auth;
mod file;
mod folders;
mod hub;
pub(crate) mod keys;
mod model;
mod rag;
mod server;
pub(crate) mod units;
pub use auth::AuthArgs;
pub use file::parse_cli;
pub use folders::FolderArgs;
pub use hub::HubArgs;
pub use model::{ModelArgs, SamplingArgs, SchedulerArgs};
pub use rag::RagArgs;
pub use server::{default_url, LogArgs, LogFormat, ServerArgs, LOG_FILTER};

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
    pub auth: hearth_server::http::auth::AuthConfig,
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

/// `hearth serve`'s arguments as the environment (and `HEARTH_CONFIG`'s file) sets them, for a
/// server only this process talks to (`hearth run`, `hearth bench`): a loopback port of its
/// own, no API keys, no default model, the models in `folders`.
///
/// # Errors
/// When a `HEARTH_*` variable or the settings file holds a bad value.
pub fn private_serve_args(folders: &FolderArgs) -> anyhow::Result<ServeArgs> {
    let cli = parse_cli(["hearth", "serve"].map(std::ffi::OsString::from).to_vec())?;
    let crate::Command::Serve(mut a) = cli.command else { anyhow::bail!("clap did not parse `serve`") };
    a.server.host = "127.0.0.1".into();
    a.server.port = 0;
    a.model.folders = folders.clone();
    a.model.default_model = None;
    a.auth.api_keys.clear();
    a.auth.api_keys_file = None;
    Ok(a)
}

/// `hearth serve`'s arguments for `hearth bench`'s in-process server, which then sets what it
/// measures: [`private_serve_args`] with every model, no limits in the way and greedy sampling.
///
/// # Errors
/// When a `HEARTH_*` variable in the environment holds a bad value.
pub fn bench_serve_args(models: &ModelArgs) -> anyhow::Result<ServeArgs> {
    let mut a = private_serve_args(&models.folders)?;
    a.server.request_timeout = 3600.0;
    a.model = ModelArgs { default_model: None, allowed_models: vec![], aliases: vec![], ..models.clone() };
    a.scheduler.max_queue = 4096;
    a.scheduler.max_concurrent_requests = 4096;
    a.scheduler.queue_timeout = 3600.0;
    a.sampling = SamplingArgs { temperature: 0.0, top_p: 1.0, top_k: 0, min_p: 0.0, repeat_penalty: 1.0 };
    Ok(a)
}

impl ServeArgs {
    /// Validates the arguments into [`Settings`].
    ///
    /// # Errors
    /// A message naming the bad setting.
    pub fn validate(self) -> anyhow::Result<Settings> {
        let sch = &self.scheduler;
        anyhow::ensure!(sch.max_concurrent_requests >= 1, "--max-concurrent-requests must be at least 1");
        anyhow::ensure!(
            sch.queue_timeout.is_finite() && sch.queue_timeout > 0.0,
            "--queue-timeout must be a positive number of seconds"
        );
        let home = self.model.folders.home();
        let share = self.auth.key_share;
        anyhow::ensure!(share > 0.0 && share <= 1.0, "--key-share must be more than 0 and at most 1");
        Ok(Settings {
            addr: self.server.addr()?,
            hub: self.hub.settings(),
            models_dir: self.model.folders.models_dir(),
            aliases: self.model.alias_pairs()?,
            engine: model::engine_settings(
                &self.model,
                sch,
                &self.sampling,
                model::isolation(self.model.isolation, &self.log)?,
            )?,
            limits: hearth_server::Limits {
                max_concurrent_requests: sch.max_concurrent_requests,
                queue_timeout: std::time::Duration::from_secs_f64(sch.queue_timeout),
                request_timeout: units::seconds("--request-timeout", self.server.request_timeout)?,
                max_body_bytes: self.server.max_body_bytes.max(1024),
                max_connections: server::connection_cap(self.server.max_connections)?,
                header_timeout: units::seconds("--header-timeout", self.server.header_timeout)?,
                key_share: self.auth.key_share,
            },
            auth: self.auth.config()?,
            cors_origins: self
                .auth
                .cors_origins
                .iter()
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect(),
            shutdown_grace: units::seconds("--shutdown-grace", self.server.shutdown_grace)?,
            ui: !self.server.no_ui,
            vector_store: self.rag.store(&home),
            max_upload_bytes: self.rag.upload_limit()?,
            rag_embedding_model: self.rag.rag_embedding_model.filter(|m| !m.is_empty()),
            default_model: self.model.default_model.filter(|m| !m.is_empty()),
            allowed_models: self.model.allowed_models.into_iter().filter(|m| !m.is_empty()).collect(),
            log: self.log,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Command};
    use clap::{CommandFactory, Parser};

    /// Every `HEARTH_*` variable `hearth serve` reads.
    fn serve_env_vars() -> Vec<String> {
        let cli = Cli::command();
        let serve = cli.get_subcommands().find(|c| c.get_name() == "serve");
        serve
            .map(|c| c.get_arguments().filter_map(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

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
    fn models_run_in_worker_processes_of_this_binary_unless_told_otherwise() {
        use hearth_engine::process::Isolation;
        match parse(&["serve", "--log", "debug"]).unwrap().engine.isolation {
            Isolation::Process(p) => {
                assert_eq!(p.program, std::env::current_exe().unwrap());
                let args: Vec<String> = p.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
                assert_eq!(args[0], "worker");
                assert!(args.windows(2).any(|w| w == ["--log", "debug"]), "{args:?}");
                assert!(args.windows(2).any(|w| w[0] == "--parent-pid" && w[1] == std::process::id().to_string()));
            }
            Isolation::Thread => panic!("process isolation is the default"),
        }
        assert_eq!(parse(&["serve", "--isolation", "thread"]).unwrap().engine.isolation, Isolation::Thread);
        assert!(parse(&["serve", "--isolation", "container"]).is_err());
    }

    #[test]
    fn lifecycle_settings() {
        let s =
            parse(&["serve", "--memory-budget", "1.5GiB", "--idle-unload", "30m", "--max-loaded-models", "2"]).unwrap();
        assert_eq!(s.engine.memory_budget, 1_610_612_736);
        assert_eq!(s.engine.idle_unload, Some(std::time::Duration::from_secs(1800)));
        assert_eq!(s.engine.max_loaded_models, 2);
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
    fn defaults_are_the_crates_own() {
        let s = parse(&["serve"]).unwrap();
        let isolated = hearth_engine::process::Isolation::Thread;
        assert_eq!(
            format!("{:?}", EngineSettings { isolation: isolated, ..s.engine }),
            format!("{:?}", EngineSettings::default())
        );
        // The connection cap may be lowered to fit this machine's file limit.
        let limits =
            hearth_server::Limits { max_connections: hearth_server::Limits::default().max_connections, ..s.limits };
        assert_eq!(format!("{limits:?}"), format!("{:?}", hearth_server::Limits::default()));
        assert_eq!(s.max_upload_bytes, hearth_server::services::retrieval::DEFAULT_MAX_UPLOAD_BYTES);
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
