//! Which words of a keyword query are worth matching. PostgreSQL ranks every chunk that
//! matches any query word (there is no top-k shortcut in a GIN index), so a word found in many
//! chunks costs time in proportion and adds little to the ranking. Word shares come from
//! PostgreSQL's own statistics of the collection's full-text column (`pg_stats`, kept by
//! ANALYZE and autovacuum), re-read every few minutes.

use super::db;
use crate::store::StoreError;
use postgres::Client;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often the statistics are read again.
const REFRESH: Duration = Duration::from_secs(300);
/// A word in more than this share of chunks (and in more than [`COMMON_FLOOR`] of them) is a
/// stop word here, as in the SQLite store.
const COMMON: f32 = 0.1;
const COMMON_FLOOR: f32 = 50.0;
/// Rows the kept words may match together (by the statistics' estimate), rarest words first.
const ROW_BUDGET: f32 = 2000.0;

/// Chunks in the table and the share of chunks holding each of the most common lexemes.
#[derive(Debug, Default)]
pub(super) struct Stats {
    rows: f32,
    share: HashMap<String, f32>,
}

/// The statistics of each collection, cached.
#[derive(Default)]
pub(super) struct CommonTerms(Mutex<HashMap<i64, (Instant, Arc<Stats>)>>);

impl CommonTerms {
    /// The lexemes of collection `cid` worth matching (see [`pick`]).
    pub(super) fn selective(&self, c: &mut Client, cid: i64, lexemes: Vec<String>) -> Result<Vec<String>, StoreError> {
        if lexemes.len() < 2 {
            return Ok(lexemes);
        }
        Ok(pick(lexemes, &*self.current(c, cid)?))
    }

    /// Forgets the statistics (read again on the next query).
    pub(super) fn forget(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    fn current(&self, c: &mut Client, cid: i64) -> Result<Arc<Stats>, StoreError> {
        if let Some((at, stats)) = self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&cid) {
            if at.elapsed() < REFRESH {
                return Ok(stats.clone());
            }
        }
        // Read without the lock: other searches go on meanwhile (two may read at once).
        let stats = Arc::new(read(c, cid)?);
        let mut cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        cache.retain(|_, (at, _)| at.elapsed() < REFRESH);
        cache.insert(cid, (Instant::now(), stats.clone()));
        Ok(stats)
    }
}

/// Rarest first: stop words (over [`COMMON`]) go, then words are kept while their estimated
/// matches fit [`ROW_BUDGET`] together; the rarest word is always kept. Small stores keep every
/// word but stop words; at 100k chunks, a word in over 2% of them is kept only when rarer ones
/// leave room.
fn pick(mut lexemes: Vec<String>, stats: &Stats) -> Vec<String> {
    let share = |l: &String| stats.share.get(l).copied().unwrap_or(0.0);
    lexemes.sort_by(|a, b| share(a).total_cmp(&share(b)).then_with(|| a.cmp(b)));
    let mut rows = 0.0;
    let keep = lexemes
        .iter()
        .take_while(|l| {
            rows += share(l) * stats.rows;
            let common = share(l) > COMMON && share(l) * stats.rows > COMMON_FLOOR;
            !common && rows <= ROW_BUDGET
        })
        .count();
    lexemes.truncate(keep.max(1));
    lexemes
}

fn read(c: &mut Client, cid: i64) -> Result<Stats, StoreError> {
    let table = format!("chunks_{cid}");
    let sql = "SELECT most_common_elems::text::text[], most_common_elem_freqs, \
               (SELECT reltuples FROM pg_class WHERE oid = to_regclass('hearth.' || $1)) FROM pg_stats \
               WHERE schemaname = 'hearth' AND tablename = $1 AND attname = 'tsv'";
    let mut row = c.query_opt(sql, &[&table]).map_err(db)?;
    if row.is_none() {
        // Not analysed yet (a new collection): gather the statistics now (a sample; cheap).
        if let Err(e) = c.batch_execute(&format!("ANALYZE hearth.{table}")) {
            tracing::warn!(error = %e, "cannot analyse {table}; common words are not dropped from keyword search");
        }
        row = c.query_opt(sql, &[&table]).map_err(db)?;
    }
    let Some(row) = row else { return Ok(Stats::default()) };
    let elems: Option<Vec<String>> = row.get(0);
    let freqs: Option<Vec<f32>> = row.get(1);
    Ok(Stats {
        rows: row.get::<_, Option<f32>>(2).unwrap_or(0.0).max(0.0),
        share: elems.unwrap_or_default().into_iter().zip(freqs.unwrap_or_default()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(rows: f32, shares: &[(&str, f32)]) -> Stats {
        Stats { rows, share: shares.iter().map(|(w, s)| (w.to_string(), *s)).collect() }
    }

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stop_words_go_and_the_rarest_stays() {
        let s = stats(1000.0, &[("the", 0.9), ("river", 0.3), ("pear", 0.01)]);
        assert_eq!(pick(words(&["the", "river", "pear", "zyx"]), &s), ["zyx", "pear"]);
        assert_eq!(pick(words(&["the", "river"]), &s), ["river"], "all common: the rarest");
        let tiny = stats(3.0, &[("apple", 0.33), ("quantum", 0.33)]);
        assert_eq!(
            pick(words(&["apple", "quantum"]), &tiny),
            ["apple", "quantum"],
            "a handful of chunks: no stop words"
        );
    }

    #[test]
    fn large_stores_keep_words_within_the_row_budget() {
        let s = stats(100_000.0, &[("a1", 0.001), ("b3", 0.003), ("c5", 0.05), ("d2", 0.02)]);
        // 100 + 300 + 2000 rows would pass the budget at the third.
        assert_eq!(pick(words(&["d2", "c5", "b3", "a1", "new"]), &s), ["new", "a1", "b3"]);
        let small = stats(10_000.0, &[("c5", 0.05), ("d2", 0.02)]);
        assert_eq!(pick(words(&["c5", "d2"]), &small), ["d2", "c5"], "700 rows fit");
    }
}
