//! Worker crashes per model: counted for `/metrics` and `/health`, and a back-off for a model
//! that keeps crashing, so that one bad file or request pattern cannot keep the server busy
//! loading it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Crashes within [`CRASH_WINDOW`] that start a back-off.
pub const CRASH_LIMIT: usize = 3;
/// The window in which [`CRASH_LIMIT`] crashes start a back-off.
pub const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// How long after its last crash a crash-looping model is refused.
pub const CRASH_BACKOFF: Duration = Duration::from_secs(60);

/// One model's crashes.
#[derive(Debug, Clone, Default)]
pub struct Crashes {
    /// Crashes since the server started.
    pub total: u64,
    /// The last crash: its exit status in words, and when.
    pub last: Option<(String, SystemTime)>,
    /// It crashed and has not been loaded again since.
    pub failed: bool,
    /// The times of the last [`CRASH_LIMIT`] crashes that count towards a back-off.
    recent: VecDeque<Instant>,
}

impl Crashes {
    /// Time left in the back-off at `now`, if the model is in one.
    fn backoff(&self, now: Instant) -> Option<Duration> {
        let (first, last) = (self.recent.front()?, self.recent.back()?);
        if self.recent.len() < CRASH_LIMIT || last.duration_since(*first) > CRASH_WINDOW {
            return None;
        }
        (*last + CRASH_BACKOFF).checked_duration_since(now).filter(|d| !d.is_zero())
    }
}

/// Crashes of every model, shared by the manager and the bridges that notice them.
#[derive(Debug, Default)]
pub struct CrashLog {
    models: Mutex<HashMap<String, Crashes>>,
}

impl CrashLog {
    fn with<T>(&self, model: &str, f: impl FnOnce(&mut Crashes) -> T) -> T {
        let mut m = self.models.lock().unwrap_or_else(PoisonError::into_inner);
        f(m.entry(model.to_string()).or_default())
    }

    /// Records a crash of `model` that ended with `exit` (in words).
    pub fn record(&self, model: &str, exit: String) {
        self.record_at(model, exit, Instant::now());
    }

    fn record_at(&self, model: &str, exit: String, at: Instant) {
        self.with(model, |c| {
            c.total += 1;
            c.failed = true;
            c.last = Some((exit, SystemTime::now()));
            if c.recent.len() == CRASH_LIMIT {
                c.recent.pop_front();
            }
            c.recent.push_back(at);
        });
    }

    /// `model` loaded again: it no longer shows as failed.
    pub fn loaded(&self, model: &str) {
        if let Some(c) = self.models.lock().unwrap_or_else(PoisonError::into_inner).get_mut(model) {
            c.failed = false;
        }
    }

    /// Ends `model`'s back-off (an admin loads it on purpose).
    pub fn forgive(&self, model: &str) {
        if let Some(c) = self.models.lock().unwrap_or_else(PoisonError::into_inner).get_mut(model) {
            c.recent.clear();
        }
    }

    /// How many crashes put `model` in a back-off, and the time left, if it is in one.
    pub fn backoff(&self, model: &str) -> Option<(u32, Duration)> {
        let m = self.models.lock().unwrap_or_else(PoisonError::into_inner);
        let c = m.get(model)?;
        c.backoff(Instant::now()).map(|d| (c.recent.len() as u32, d))
    }

    /// Every model that has crashed, sorted by id.
    pub fn all(&self) -> Vec<(String, Crashes)> {
        let m = self.models.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<_> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// `model`'s crashes, if it has any.
    pub fn get(&self, model: &str) -> Option<Crashes> {
        self.models.lock().unwrap_or_else(PoisonError::into_inner).get(model).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_crashes_within_a_minute_start_a_back_off_that_ends() {
        let log = CrashLog::default();
        let t0 = Instant::now();
        log.record_at("m", "signal 6".into(), t0);
        log.record_at("m", "signal 6".into(), t0);
        assert!(log.backoff("m").is_none(), "two crashes are not a loop");
        log.record_at("m", "signal 9".into(), t0);
        let (n, left) = log.backoff("m").expect("three crashes in a minute");
        assert_eq!(n, 3);
        assert!(left <= CRASH_BACKOFF && left > CRASH_BACKOFF - Duration::from_secs(5));
        let c = log.get("m").unwrap();
        assert_eq!((c.total, c.failed), (3, true));
        log.loaded("m");
        assert!(!log.get("m").unwrap().failed);
        log.forgive("m");
        assert!(log.backoff("m").is_none(), "an admin's load ends the back-off");
        assert_eq!(log.get("m").unwrap().total, 3, "the total is kept for metrics");
    }

    #[test]
    fn crashes_spread_over_more_than_the_window_are_no_loop() {
        let log = CrashLog::default();
        let Some(t0) = Instant::now().checked_sub(CRASH_WINDOW * 2) else { return };
        log.record_at("m", "x".into(), t0);
        log.record_at("m", "x".into(), Instant::now());
        log.record_at("m", "x".into(), Instant::now());
        assert!(log.backoff("m").is_none());
    }

    #[test]
    fn a_back_off_is_over_once_its_time_has_passed() {
        let log = CrashLog::default();
        let Some(t0) = Instant::now().checked_sub(CRASH_BACKOFF + Duration::from_secs(1)) else { return };
        for _ in 0..3 {
            log.record_at("m", "x".into(), t0);
        }
        assert!(log.backoff("m").is_none());
    }
}
