//! `hearth worker` (hidden): one model's worker process, started by `hearth serve` with its
//! process isolation. It speaks the engine's worker protocol on stdin and on what was stdout
//! (see `hearth_engine::process`), and logs to stderr, which the server relays.

use crate::config::{LogFormat, LOG_FILTER};
use clap::Args;
use hearth_engine::process::child::{self, ChildOptions};
use std::os::fd::AsFd;

/// Serves one model for the server that started this process; returns the exit code.
///
/// # Errors
/// When the process cannot be set up (its output, its parent's death signal, llama.cpp).
pub fn run(args: WorkerArgs) -> anyhow::Result<i32> {
    crate::init_logging(args.log_format, &args.filter);
    die_with_parent(args.parent_pid)?;
    let out = take_stdout()?;
    let loader = hearth_llama::LlamaLoader::new().map_err(|e| anyhow::anyhow!("llama.cpp: {e}"))?;
    let opts = ChildOptions { abort_on_stop: fault_hook(args.fault_abort) };
    Ok(child::serve(&loader, std::io::stdin(), out, opts))
}

/// Asks the kernel to kill this process when the server goes, however it goes (even
/// `kill -9`), and exits now if it is already gone.
fn die_with_parent(parent: u32) -> anyhow::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
    let now = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32);
    anyhow::ensure!(now == parent, "the server (process {parent}) is gone");
    Ok(())
}

/// The protocol's output: a copy of stdout, with stdout itself pointed at stderr so that
/// nothing llama.cpp or a library prints can corrupt a frame.
fn take_stdout() -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
    let out = std::io::stdout().as_fd().try_clone_to_owned()?;
    rustix::stdio::dup2_stdout(std::io::stderr())?;
    Ok(std::io::BufWriter::with_capacity(64 << 10, std::fs::File::from(out)))
}

/// The crash-test hook: honoured by debug builds (the tests'), never by a release build.
fn fault_hook(marker: Option<String>) -> Option<String> {
    if cfg!(debug_assertions) {
        return marker;
    }
    if marker.is_some() {
        tracing::warn!("HEARTH_TEST_FAULT_ABORT is ignored by release builds");
    }
    None
}

/// `hearth worker`: how `hearth serve` starts a model's worker process.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Log format (the server's).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter (the server's).
    #[arg(long = "log", default_value = LOG_FILTER)]
    pub filter: String,
    /// The server's process id: the worker exits if that process is gone.
    #[arg(long)]
    pub parent_pid: u32,
    /// Test builds only: a generation request with this stop string aborts the worker (crash
    /// tests). Ignored, with a warning, by release builds.
    #[arg(long, env = "HEARTH_TEST_FAULT_ABORT", hide = true)]
    pub fault_abort: Option<String>,
}
