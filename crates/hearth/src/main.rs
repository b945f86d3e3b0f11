//! The `hearth` binary: configuration, logging, wiring and shutdown.
//!
//! - `hearth serve`: the HTTP server (see `hearth serve --help`);
//! - `hearth bench`: decode speed and time to first token, over HTTP and on the raw engine;
//!   `hearth bench embeddings`: embedding throughput, latency and memory;
//! - `hearth ingest`, `hearth search`: the retrieval API from the command line.

// A binary has no public API: `pub` here only marks what sibling modules use.
#![allow(unreachable_pub)]

mod client;
mod commands;
mod config;

use clap::{Parser, Subcommand};
use commands::{bench, models, pull, rag, run, worker};
use config::{LogFormat, ServeArgs};
use tracing_subscriber::EnvFilter;

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
    Pull(pull::PullArgs),
    /// Chat with a model in the terminal (pulled first if it is a hub reference not here).
    Run(run::RunArgs),
    /// List the models in the models folder (or a server's, with --url).
    List(models::ListArgs),
    /// List the models a server has loaded.
    Ps(models::PsArgs),
    /// Show a model's architecture, parameters, quantisation, context, template, capabilities.
    Show(models::ModelArg),
    /// Delete a model from the models folder (or a server's, with --url).
    Rm(models::ModelArg),
    /// Measure decode speed and time to first token (over HTTP and on the raw engine);
    /// `hearth bench embeddings` measures embedding throughput and latency.
    Bench(bench::BenchArgs),
    /// Upload documents to a running server's collection (created if missing), with progress.
    Ingest(rag::IngestArgs),
    /// Search a running server's collection.
    Search(rag::SearchArgs),
    /// Print the SHA-256 of an API key read from standard input, for `name:sha256:HEX` lines of
    /// the keys file (so the file need not hold keys in clear).
    HashKey,
    /// One model's worker process, started by `hearth serve` (not for people to run).
    #[command(hide = true)]
    Worker(worker::WorkerArgs),
}

pub(crate) fn init_logging(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("bad log filter {filter:?} ({e}); using `info`");
        EnvFilter::new("info")
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> anyhow::Result<()> {
    hearth_hub::install_crypto();
    let cli = config::parse_cli(std::env::args_os().collect())?;
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log.log_format, &args.log.filter);
            let settings = args.validate()?;
            tracing::debug!(?settings, "settings");
            runtime()?.block_on(commands::serve::serve(settings))
        }
        Command::Bench(args) => {
            init_logging(LogFormat::Text, config::LOG_FILTER);
            runtime()?.block_on(bench::run(args))
        }
        Command::Pull(args) => runtime()?.block_on(pull::run(args)),
        Command::Run(args) => run::run(args),
        Command::List(args) => runtime()?.block_on(models::list(args)),
        Command::Ps(args) => runtime()?.block_on(models::ps(args)),
        Command::Show(args) => runtime()?.block_on(models::show(args)),
        Command::Rm(args) => runtime()?.block_on(models::rm(args)),
        Command::Ingest(args) => runtime()?.block_on(rag::ingest(args)),
        Command::Search(args) => runtime()?.block_on(rag::search(args)),
        Command::Worker(args) => std::process::exit(worker::run(args)?),
        Command::HashKey => commands::keys::hash_key(),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}
