//! `hearth pull REF`: a model from the Hugging Face hub into the models folder, with a
//! progress bar on a terminal (bytes, speed, time left) and plain lines otherwise.

use crate::config::{FolderArgs, HubArgs};
use clap::Args;
use hearth_hub::{Hub, Progress, Reference};
use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Runs `hearth pull`.
///
/// # Errors
/// The pull's error, as one message.
pub async fn run(a: PullArgs) -> anyhow::Result<()> {
    let r: Reference = a.reference.parse()?;
    let hub = Hub::new(a.hub.settings())?;
    let dir = a.folders.models_dir();
    let mut bar = Bar::new(std::io::stderr().is_terminal());
    let pulled = hub.pull(&r, &dir, &mut |p| bar.show(&p)).await;
    bar.end_line();
    let p = pulled?;
    // The names it was pulled as work as aliases (a running server sees them at once).
    hearth_engine::registry::remember_aliases(&dir, &r.names(&p.quant), &p.id)?;
    let how = if p.fetched == 0 { "from the hub cache".to_string() } else { format!("{} fetched", size(p.fetched)) };
    println!("{} ({}, {how}) in {}", p.id, p.quant, dir.display());
    Ok(())
}

/// Progress on standard error.
struct Bar {
    tty: bool,
    /// The file being fetched, and when its transfer began.
    file: Option<String>,
    started: Instant,
    /// Bytes at the start of this file's transfer (a resumed file starts past 0).
    from: u64,
    /// The tenth of the file last reported on a plain line.
    tenth: u64,
    open: bool,
}

impl Bar {
    fn new(tty: bool) -> Self {
        Self { tty, file: None, started: Instant::now(), from: 0, tenth: 0, open: false }
    }

    fn show(&mut self, p: &Progress) {
        let mut err = std::io::stderr().lock();
        match p {
            Progress::Resolved { files, note, .. } => {
                if let Some(n) = note {
                    let _ = writeln!(err, "note: {n}");
                }
                let total: u64 = files.iter().map(|(_, s)| s).sum();
                let _ = writeln!(err, "pulling {} file(s), {}", files.len(), size(total));
            }
            Progress::Cached { file, .. } => {
                let _ = writeln!(err, "{file}: in the hub cache already");
            }
            Progress::Downloading { file, done, total, .. } => self.bytes(&mut err, file, *done, *total),
            Progress::Verifying { file } => {
                self.end(&mut err);
                let _ = writeln!(err, "{file}: verifying sha256");
            }
        }
    }

    fn bytes(&mut self, err: &mut impl Write, file: &str, done: u64, total: u64) {
        if self.file.as_deref() != Some(file) {
            (self.file, self.started, self.from, self.tenth) = (Some(file.to_string()), Instant::now(), done, 0);
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = (done.saturating_sub(self.from)) as f64 / secs;
        let pct = (done * 100).checked_div(total).unwrap_or(0);
        let eta = if rate > 0.0 && total > done { format!("{:.0}s", (total - done) as f64 / rate) } else { "-".into() };
        let line = format!("{file} {pct:>3}% {}/{} {}/s ETA {eta}", size(done), size(total), size(rate as u64));
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
            self.open = true;
        } else if total > 0 && done * 10 / total > self.tenth {
            self.tenth = done * 10 / total;
            let _ = writeln!(err, "{line}");
        }
    }

    fn end(&mut self, err: &mut impl Write) {
        if self.open && self.tty {
            let _ = writeln!(err);
        }
        self.open = false;
    }

    fn end_line(&mut self) {
        let mut err = std::io::stderr().lock();
        self.end(&mut err);
    }
}

/// Bytes as B, KB, MB or GB (powers of 1000, as download tools show them).
pub fn size(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_a_download_tool() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(134_500_000), "134.5 MB");
        assert_eq!(size(4_200_000_000), "4.2 GB");
    }
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
