//! Fair shares of the pools every key draws from (admission permits, upload slots, ingestion
//! queue places): with keys configured, no one non-admin key may hold more than its share of a
//! pool, so one key cannot take for itself what belongs to all. Admin keys (the operator's) and
//! the open mode (one user) are not limited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The key whose share a request draws on: a non-admin key's name (`None`: not limited).
pub fn key_of(caller: Option<&crate::http::auth::Caller>) -> Option<&str> {
    caller.filter(|c| !c.admin).map(|c| c.name.as_str())
}

/// Takes `n` of a pool of `total` for `caller`'s key (nothing for an admin or the open mode).
///
/// # Errors
/// 429 naming the share when the key would hold more than it.
pub fn take(
    pool: &Arc<Shares>,
    caller: Option<&crate::http::auth::Caller>,
    n: usize,
    total: usize,
    what: &'static str,
) -> Result<Option<Share>, crate::http::error::ApiError> {
    let Some(key) = key_of(caller) else { return Ok(None) };
    pool.take(key, n, total).map(Some).map_err(|limit| crate::http::error::ApiError::KeyShare { what, limit })
}

/// What each key holds of one pool.
#[derive(Debug)]
pub struct Shares {
    /// The fraction of a pool one key may hold (0 < share <= 1).
    share: f64,
    /// Units held, by key name.
    held: Mutex<HashMap<String, usize>>,
}

/// Units of a pool held by one key; given back when dropped.
#[derive(Debug)]
pub struct Share {
    shares: Arc<Shares>,
    owner: String,
    units: usize,
}

impl Shares {
    /// Shares of `share` (a fraction of each pool) per key.
    pub fn new(share: f64) -> Arc<Self> {
        Arc::new(Self { share: share.clamp(f64::MIN_POSITIVE, 1.0), held: Mutex::new(HashMap::new()) })
    }

    /// The most units of a pool of `total` one key may hold (at least one).
    pub fn limit(&self, total: usize) -> usize {
        ((total as f64 * self.share).floor() as usize).clamp(1, total.max(1))
    }

    /// Takes `n` units of a pool of `total` for `owner`.
    ///
    /// # Errors
    /// The key's limit, when it would hold more.
    pub fn take(self: &Arc<Self>, owner: &str, n: usize, total: usize) -> Result<Share, usize> {
        let limit = self.limit(total);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = held.entry(owner.to_string()).or_default();
        if *mine + n > limit {
            return Err(limit);
        }
        *mine += n;
        Ok(Share { shares: self.clone(), owner: owner.to_string(), units: n })
    }
}

impl Share {
    /// Moves one unit into a share of its own (a queue place that goes with its job).
    pub fn split_one(&mut self) -> Option<Share> {
        if self.units == 0 {
            return None;
        }
        self.units -= 1;
        Some(Share { shares: self.shares.clone(), owner: self.owner.clone(), units: 1 })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self.shares.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(mine) = held.get_mut(&self.owner) {
            *mine = mine.saturating_sub(self.units);
            if *mine == 0 {
                held.remove(&self.owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_share_and_gets_it_back() {
        let s = Shares::new(0.5);
        let a = s.take("alice", 2, 4).unwrap();
        assert_eq!(s.take("alice", 1, 4).unwrap_err(), 2, "half of four");
        let b = s.take("bob", 2, 4).unwrap();
        drop(a);
        let mut c = s.take("alice", 2, 4).unwrap();
        let one = c.split_one().unwrap();
        drop(c);
        assert!(s.take("alice", 2, 4).is_err(), "the split unit is still held");
        drop(one);
        assert!(s.take("alice", 2, 4).is_ok());
        drop(b);
        assert_eq!(Shares::new(0.01).limit(10), 1, "never less than one");
    }
}
