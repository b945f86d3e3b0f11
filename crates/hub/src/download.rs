//! One file into the hub cache: resumed from its `.incomplete` part with `Range`, retried when
//! the connection drops, hashed as it is written, and renamed to its blob only when its
//! SHA-256 is the hub's.

use crate::cache::RepoCache;
use crate::fetch::{Hub, Progress, Resolved};
use crate::PullError;
use futures::StreamExt;
use reqwest::header::RANGE;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Connections tried for one file before the pull gives up (each resumes where the last one
/// stopped).
const ATTEMPTS: u32 = 6;
/// Chunks in flight between the network and the writer thread.
const WRITE_QUEUE: usize = 64;
/// How often progress is reported while bytes arrive.
const REPORT_EVERY: Duration = Duration::from_millis(250);

/// How one connection ended.
enum Ended {
    /// The server sent all it would.
    Complete,
    /// The connection dropped; what arrived is kept.
    Cut(reqwest::Error),
    /// The partial file was not usable and is empty again: connect once more.
    Again,
}

/// Fetches `file` (at `at`) into its blob unless it is there; returns the bytes fetched.
pub(crate) async fn blob(
    hub: &Hub,
    cache: &RepoCache,
    file: &str,
    at: &Resolved,
    on: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, PullError> {
    // One download of a blob at a time, across pulls and processes: a second waits, then finds
    // the blob complete.
    let _held = exclusive(&cache.lock(&at.sha256)).await?;
    let done = cache.blob(&at.sha256);
    if std::fs::metadata(&done).is_ok_and(|m| at.size == 0 || m.len() == at.size) {
        on(Progress::Cached { file: file.to_string(), sha256: at.sha256.clone(), size: at.size });
        return Ok(0);
    }
    let part = cache.incomplete(&at.sha256);
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir).map_err(|e| PullError::io(dir, e))?;
    }
    let mut state = Partial::resume(&part, at.size).await?;
    let start = state.len;
    let mut tries = 0;
    while at.size == 0 || state.len < at.size {
        tries += 1;
        match connection(hub, at, file, &mut state, on).await {
            Ok(Ended::Complete) => break,
            Ok(Ended::Again) if tries < ATTEMPTS => {}
            Ok(Ended::Cut(e)) | Err(Retry(e)) if tries < ATTEMPTS => {
                tracing::warn!(file, got = state.len, error = %e, "download interrupted; resuming");
                tokio::time::sleep(Duration::from_millis(300 * u64::from(tries))).await;
            }
            Ok(Ended::Again) => return Err(PullError::Truncated { file: file.to_string(), got: 0, want: at.size }),
            Ok(Ended::Cut(e)) | Err(Retry(e)) => {
                return Err(if state.len > 0 && at.size > 0 {
                    PullError::Truncated { file: file.to_string(), got: state.len, want: at.size }
                } else {
                    hub.network(e)
                })
            }
            Err(Fatal(e)) => return Err(e),
        }
    }
    on(Progress::Verifying { file: file.to_string() });
    let got = state.hex();
    if got != at.sha256 || (at.size > 0 && state.len != at.size) {
        let _ = std::fs::remove_file(&part);
        return Err(PullError::ChecksumMismatch { file: file.to_string(), expected: at.sha256.clone(), got });
    }
    std::fs::rename(&part, &done).map_err(|e| PullError::io(&done, e))?;
    Ok(state.len - start)
}

/// Holds the lock file at `path` (made if missing) until the returned file is dropped; waits
/// while another pull holds it.
async fn exclusive(path: &Path) -> Result<std::fs::File, PullError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| PullError::io(dir, e))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| PullError::io(path, e))?;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(std::fs::TryLockError::Error(e)) => return Err(PullError::io(path, e)),
        }
    }
}

/// What a connection attempt failed with.
enum Failure {
    /// Worth another connection.
    Retry(reqwest::Error),
    /// Not.
    Fatal(PullError),
}
use Failure::{Fatal, Retry};

/// The `.incomplete` file so far and the hash of its bytes.
struct Partial {
    path: PathBuf,
    len: u64,
    hash: Sha256,
}

impl Partial {
    /// Picks up a partial file left by an earlier pull (hashing what it holds), or starts one.
    async fn resume(path: &Path, size: u64) -> Result<Self, PullError> {
        let p = path.to_path_buf();
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, Sha256)> {
            let mut hash = Sha256::new();
            let mut len = 0;
            // Only a regular file holds a partial download (not a device or a folder).
            let regular = std::fs::metadata(&p).is_ok_and(|m| m.is_file());
            if let Some(mut f) = regular.then(|| std::fs::File::open(&p)).transpose()? {
                let mut buf = vec![0; 1 << 20];
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hash.update(&buf[..n]);
                    len += n as u64;
                }
            }
            Ok((len, hash))
        });
        let (len, hash) = read
            .await
            .map_err(|_| PullError::Malformed(path.display().to_string()))?
            .map_err(|e| PullError::io(path, e))?;
        let mut state = Self { path: path.to_path_buf(), len, hash };
        if size > 0 && len > size {
            state.restart()?;
        }
        Ok(state)
    }

    fn restart(&mut self) -> Result<(), PullError> {
        std::fs::File::create(&self.path).map_err(|e| PullError::io(&self.path, e))?;
        self.len = 0;
        self.hash = Sha256::new();
        Ok(())
    }

    fn hex(&self) -> String {
        self.hash.clone().finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One connection: asks for the bytes after what the partial file holds and appends them.
async fn connection(
    hub: &Hub,
    at: &Resolved,
    file: &str,
    state: &mut Partial,
    on: &mut (dyn FnMut(Progress) + Send),
) -> Result<Ended, Failure> {
    let mut req = hub.get(at);
    if state.len > 0 {
        req = req.header(RANGE, format!("bytes={}-", state.len));
    }
    let resp = req.send().await.map_err(Retry)?;
    match resp.status() {
        StatusCode::PARTIAL_CONTENT => {}
        StatusCode::OK if state.len > 0 => state.restart().map_err(Fatal)?, // the server ignored Range
        StatusCode::OK => {}
        StatusCode::RANGE_NOT_SATISFIABLE if at.size > 0 && state.len == at.size => return Ok(Ended::Complete),
        StatusCode::RANGE_NOT_SATISFIABLE => {
            state.restart().map_err(Fatal)?;
            return Ok(Ended::Again);
        }
        s => return Err(Fatal(PullError::Status { status: s.as_u16(), url: strip_query(&at.url) })),
    }
    let (tx, rx) = mpsc::channel::<bytes::Bytes>(WRITE_QUEUE);
    let writer = spawn_writer(&state.path, std::mem::take(&mut state.hash), rx);
    let mut stream = resp.bytes_stream();
    let mut ended = Ended::Complete;
    let mut last = Instant::now();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                state.len += c.len() as u64;
                if tx.send(c).await.is_err() {
                    break; // the writer failed; its error comes from join below
                }
                if last.elapsed() >= REPORT_EVERY {
                    last = Instant::now();
                    on(progress(file, at, state.len));
                }
            }
            Err(e) => {
                ended = Ended::Cut(e);
                break;
            }
        }
    }
    drop(tx);
    let (hash, written) = writer.await.map_err(|_| Fatal(PullError::Malformed(file.to_string())))?;
    state.hash = hash;
    if let Err(e) = written {
        let _ = std::fs::remove_file(&state.path);
        return Err(Fatal(PullError::io(&state.path, e)));
    }
    on(progress(file, at, state.len));
    Ok(ended)
}

fn progress(file: &str, at: &Resolved, done: u64) -> Progress {
    Progress::Downloading { file: file.to_string(), sha256: at.sha256.clone(), done, total: at.size }
}

/// A thread that appends chunks to `path` and hashes them, so the network is never waiting on
/// the disk or the hash; returns the hash and how the writing went.
fn spawn_writer(
    path: &Path,
    mut hash: Sha256,
    mut rx: mpsc::Receiver<bytes::Bytes>,
) -> tokio::task::JoinHandle<(Sha256, std::io::Result<()>)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
        // Chunks go straight to the file (tens of KiB each): a buffer would only copy them again.
        let mut out = match file {
            Ok(f) => f,
            Err(e) => return (hash, Err(e)),
        };
        while let Some(chunk) = rx.blocking_recv() {
            hash.update(&chunk);
            if let Err(e) = out.write_all(&chunk) {
                return (hash, Err(e));
            }
        }
        (hash, out.sync_data())
    })
}

fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}
