//! Model workers in their own processes, so that a crash in llama.cpp (a failed assert, an
//! abort, a stack overflow, an out-of-memory kill) ends one model's requests, not the server.
//!
//! The cut is the worker's command/event boundary, which was kept plain data for this: the
//! server keeps the model's vocabulary, admission, tokenizing and metrics, and sends a child
//! process the same [`crate::command::Command`]s a worker thread takes, as frames on its stdin
//! ([`wire`]). The child ([`child::serve`], run by the binary's hidden `worker` command) runs
//! the same worker loop and streams each sequence's events back while the server grants credit
//! for them ([`parent`]), so backpressure stays per client. A child that dies is noticed when
//! its output ends: every request in flight ends with [`crate::EngineError::ModelCrashed`],
//! the crash is logged with the exit status and the last lines of its stderr, and counted in
//! [`crate::crash::CrashLog`].

pub mod child;
pub(crate) mod parent;
pub(crate) mod wire;

use std::ffi::OsString;
use std::path::PathBuf;

/// Events of one choice the child may send beyond what the server has delivered.
pub(crate) const EVENT_WINDOW: usize = 64;
/// Delivered events the server acknowledges together.
pub(crate) const CREDIT_BATCH: u32 = 16;

/// How a worker process is started: this binary, under its hidden worker command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerProgram {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

/// Where a loaded model's worker runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Isolation {
    /// A thread of this process (the embedding library and tests that need no binary).
    #[default]
    Thread,
    /// A child process per model (the server's default): a crash ends only that model's work.
    Process(WorkerProgram),
}

/// The resident memory of process `pid` in bytes, from `/proc` (`None` where unknown).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_a_resident_size() {
        let rss = super::rss_bytes(std::process::id()).unwrap_or(0);
        assert!(rss > 1 << 20, "{rss}");
        assert!(super::rss_bytes(u32::MAX).is_none());
    }
}
