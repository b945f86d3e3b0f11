//! `/models/pull`: a pull from the hub as a job the browser UI polls. `POST` starts one (or
//! joins the running pull of the same reference), `GET /models/pull/{id}` shows its bytes,
//! speed and time left, `GET /models/pull` lists recent ones, `DELETE` cancels a running one
//! (what was fetched stays in the hub cache, and the next pull resumes it) or forgets a finished
//! one. At most [`MAX_RUNNING_PULLS`] run at once.

use crate::http::error::ApiError;
use crate::http::refused::{Busy, Missing};
use hearth_hub::{Progress, PullError, Pulled, Reference};
use hearth_protocol::pull::{PullFailure, PullJob, PullStatus};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime};
use tokio::sync::oneshot;

/// Pulls running at once; one more is a 429.
pub const MAX_RUNNING_PULLS: usize = 2;
/// Finished jobs remembered; older ones are forgotten.
const KEPT_JOBS: usize = 32;

/// This server's pull jobs.
#[derive(Default)]
pub struct Pulls {
    entries: Mutex<Vec<Entry>>,
}

pub(crate) struct Entry {
    pub(crate) job: PullJob,
    /// The reference as the hub reads it, to join a second request for the same model.
    reference: String,
    files: Vec<FileBytes>,
    /// When bytes first arrived.
    since: Option<Instant>,
    cancel: Option<oneshot::Sender<()>>,
}

struct FileBytes {
    name: String,
    done: u64,
    /// Bytes it had when first reported (a resumed or cached file's), not fetched by this job.
    first: u64,
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Entry {
    pub(crate) fn on(&mut self, p: &Progress) {
        match p {
            Progress::Resolved { files, note, .. } => {
                self.job.total = Some(files.iter().map(|(_, size)| size).sum());
                self.files =
                    files.iter().map(|(name, _)| FileBytes { name: name.clone(), done: 0, first: 0 }).collect();
                self.job.note.clone_from(note);
                return;
            }
            Progress::Cached { file, size, .. } => self.bytes(file, *size, true),
            Progress::Downloading { file, done, .. } => self.bytes(file, *done, false),
            Progress::Verifying { file } => self.job.file = Some(file.clone()),
        }
        self.job.completed = self.files.iter().map(|f| f.done).sum();
        let fetched: u64 = self.files.iter().map(|f| f.done.saturating_sub(f.first)).sum();
        let secs = self.since.map_or(0.0, |s| s.elapsed().as_secs_f64());
        if fetched > 0 && secs > 0.05 {
            let speed = fetched as f64 / secs;
            self.job.bytes_per_second = Some(speed);
            let left = self.job.total.unwrap_or(0).saturating_sub(self.job.completed);
            self.job.eta_seconds = Some(left as f64 / speed);
        }
    }

    fn bytes(&mut self, file: &str, done: u64, cached: bool) {
        if !cached {
            self.since.get_or_insert_with(Instant::now);
            self.job.file = Some(file.to_string());
        }
        match self.files.iter_mut().find(|f| f.name == file) {
            Some(f) if f.done == 0 && f.first == 0 => (f.done, f.first) = (done, done),
            Some(f) => f.done = done,
            None => self.files.push(FileBytes { name: file.to_string(), done, first: done }),
        }
    }

    pub(crate) fn end(&mut self, outcome: Option<&Result<Pulled, PullError>>) {
        self.cancel = None;
        self.job.finished_at = Some(unix_now());
        self.job.bytes_per_second = None;
        self.job.eta_seconds = None;
        match outcome {
            None => self.job.status = PullStatus::Cancelled,
            Some(Ok(pulled)) => {
                self.job.status = PullStatus::Done;
                self.job.completed = self.job.total.unwrap_or(self.job.completed);
                self.job.model_id = Some(pulled.id.clone());
                self.job.note.clone_from(&pulled.note);
                self.job.file = None;
            }
            Some(Err(e)) => {
                tracing::warn!(model = %self.job.model, error = %e, "pull failed");
                let (_, _, _, code, message) = crate::http::refused::pull(e);
                self.job.status = PullStatus::Failed;
                self.job.error = Some(PullFailure { code: code.unwrap_or("hub_error").into(), message });
            }
        }
    }
}

/// A pull started by `POST /api/pull`, counted among the jobs (so the running-pull cap holds
/// for both routes) and ended with its outcome.
pub(crate) struct Tracked {
    pulls: Arc<Pulls>,
    /// The job's id when this pull started it (`None`: it joined a running pull of the same
    /// reference, which ends that job itself).
    id: Option<String>,
}

impl Tracked {
    /// Counts a pull of `r` (named `model`) as a job.
    ///
    /// # Errors
    /// 429 when [`MAX_RUNNING_PULLS`] run already.
    pub(crate) fn begin(pulls: &Arc<Pulls>, model: &str, r: &Reference) -> Result<Self, ApiError> {
        let id = match pulls.begin(model, r.to_string())? {
            Begun::Joined(_) => None,
            Begun::New(job, _) => Some(job.id),
        };
        Ok(Self { pulls: pulls.clone(), id })
    }

    /// Ends the job with the pull's outcome.
    pub(crate) fn end(self, outcome: &Result<Pulled, PullError>) {
        if let Some(id) = &self.id {
            self.pulls.update(id, |e| e.end(Some(outcome)));
        }
    }

    /// Ends the job as cancelled (its client went away).
    pub(crate) fn cancelled(self) {
        if let Some(id) = &self.id {
            self.pulls.update(id, |e| e.end(None));
        }
    }
}

/// What [`Pulls::begin`] did.
pub(crate) enum Begun {
    /// A pull of the same reference is running: this is it.
    Joined(PullJob),
    /// A new job, and the receiver its cancellation arrives on.
    New(PullJob, oneshot::Receiver<()>),
}

impl Pulls {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn begin(&self, model: &str, reference: String) -> Result<Begun, ApiError> {
        let mut entries = self.lock();
        let running = entries.iter().filter(|e| e.job.status == PullStatus::Running);
        if let Some(e) = running.clone().find(|e| e.reference == reference) {
            return Ok(Begun::Joined(e.job.clone()));
        }
        if running.count() >= MAX_RUNNING_PULLS {
            return Err(ApiError::Busy(Busy::Pulls { limit: MAX_RUNNING_PULLS }));
        }
        while entries.iter().filter(|e| e.job.status != PullStatus::Running).count() >= KEPT_JOBS {
            let Some(oldest) = entries.iter().position(|e| e.job.status != PullStatus::Running) else { break };
            entries.remove(oldest);
        }
        let (tx, rx) = oneshot::channel();
        let job = new_job(model, PullStatus::Running);
        entries.push(Entry { job: job.clone(), reference, files: Vec::new(), since: None, cancel: Some(tx) });
        Ok(Begun::New(job, rx))
    }

    pub(crate) fn update(&self, id: &str, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.lock().iter_mut().find(|e| e.job.id == id) {
            f(e);
        }
    }

    pub(crate) fn get(&self, id: &str) -> Result<PullJob, ApiError> {
        let entries = self.lock();
        let e = entries.iter().find(|e| e.job.id == id).ok_or_else(|| ApiError::Missing(Missing::Pull(id.into())))?;
        Ok(e.job.clone())
    }

    /// Cancels the job if it runs, else forgets it; the job as it ends.
    pub(crate) fn cancel(&self, id: &str) -> Result<PullJob, ApiError> {
        let mut entries = self.lock();
        let i =
            entries.iter().position(|e| e.job.id == id).ok_or_else(|| ApiError::Missing(Missing::Pull(id.into())))?;
        if entries[i].job.status != PullStatus::Running {
            return Ok(entries.remove(i).job);
        }
        if let Some(tx) = entries[i].cancel.take() {
            let _ = tx.send(());
        }
        entries[i].end(None);
        Ok(entries[i].job.clone())
    }

    pub(crate) fn list(&self) -> Vec<PullJob> {
        self.lock().iter().rev().map(|e| e.job.clone()).collect()
    }
}

pub(crate) fn new_job(model: &str, status: PullStatus) -> PullJob {
    PullJob {
        id: crate::http::ids::new_id("pull"),
        object: "model.pull".into(),
        model: model.into(),
        status,
        file: None,
        completed: 0,
        total: None,
        bytes_per_second: None,
        eta_seconds: None,
        model_id: None,
        note: None,
        error: None,
        created_at: unix_now(),
        finished_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        let (tx, _rx) = oneshot::channel();
        Entry {
            job: new_job("o/r", PullStatus::Running),
            reference: "o/r".into(),
            files: vec![],
            since: None,
            cancel: Some(tx),
        }
    }

    #[test]
    fn progress_adds_up_over_the_files_of_a_split_model() {
        let mut e = entry();
        let files = vec![("a-00001-of-00002.gguf".to_string(), 100), ("a-00002-of-00002.gguf".to_string(), 50)];
        e.on(&Progress::Resolved { commit: "c".into(), files, note: None });
        assert_eq!(e.job.total, Some(150));
        e.on(&Progress::Cached { file: "a-00001-of-00002.gguf".into(), sha256: "s".into(), size: 100 });
        e.on(&Progress::Downloading { file: "a-00002-of-00002.gguf".into(), sha256: "s".into(), done: 10, total: 50 });
        std::thread::sleep(std::time::Duration::from_millis(60));
        e.on(&Progress::Downloading { file: "a-00002-of-00002.gguf".into(), sha256: "s".into(), done: 30, total: 50 });
        assert_eq!(e.job.completed, 130);
        assert_eq!(e.job.file.as_deref(), Some("a-00002-of-00002.gguf"));
        let speed = e.job.bytes_per_second.unwrap();
        assert!(speed > 0.0 && speed < 20.0 / 0.06 + 1.0, "only the 20 bytes fetched count: {speed}");
        assert!((e.job.eta_seconds.unwrap() - 20.0 / speed).abs() < 1e-6);
    }

    #[test]
    fn a_second_pull_of_the_same_reference_joins_the_first_and_the_running_ones_are_capped() {
        let p = Pulls::default();
        let Ok(Begun::New(first, _rx1)) = p.begin("o/r", "o/r".into()) else { panic!("first") };
        let Ok(Begun::Joined(joined)) = p.begin("hf.co/o/r", "o/r".into()) else { panic!("joined") };
        assert_eq!(joined.id, first.id);
        let Ok(Begun::New(_, _rx2)) = p.begin("o/s", "o/s".into()) else { panic!("second") };
        assert!(matches!(p.begin("o/t", "o/t".into()), Err(ApiError::Busy(Busy::Pulls { limit: MAX_RUNNING_PULLS }))));
        // `POST /api/pull` counts against the same cap (issue 28: it did not).
        let p = Arc::new(p);
        let r: Reference = "o/u".parse().unwrap();
        assert!(matches!(Tracked::begin(&p, "o/u", &r), Err(ApiError::Busy(Busy::Pulls { .. }))));
        let cancelled = p.cancel(&first.id).unwrap();
        assert_eq!(cancelled.status, PullStatus::Cancelled);
        assert!(cancelled.finished_at.is_some());
        assert!(matches!(p.begin("o/t", "o/t".into()), Ok(Begun::New(..))), "a cancelled pull frees its place");
        assert_eq!(p.cancel(&first.id).unwrap().id, first.id, "a finished job is forgotten");
        assert!(matches!(p.get(&first.id), Err(ApiError::Missing(_))));
        assert_eq!(p.list().len(), 2);
    }
}
