//! Search in the embedded store: vector candidates from the int8 index rescored on the stored
//! f32 vectors, BM25 keyword search over each collection's postings, and the hybrid of both.

use super::{db, floats, Inner, Live};
use crate::store::{combine, query_vector, query_words, Hit, Query, StoreError};

use std::collections::HashMap;

impl Inner {
    pub(super) fn search(&self, collection: &str, q: &Query) -> Result<Vec<Hit>, StoreError> {
        let live = self.live(collection)?;
        let allow = |doc: i64| {
            q.filter.is_empty()
                || live.metadata.get(&doc).is_some_and(|m| q.filter.iter().all(|(k, v)| m.get(k) == Some(v)))
        };
        let vector = |n: usize| -> Result<Vec<(i64, f32)>, StoreError> {
            let v = query_vector(collection, live.dim, q)?;
            // Rescoring 4 candidates per result (the hybrid pool is wide enough already).
            let wide = n.max(q.top_k.clamp(1, 1000) * 4);
            self.rescore(v, &live.index.candidates(v, wide, &allow), n)
        };
        let scored = combine(q, vector, |n| self.keyword(live, &q.text, n, &allow))?;
        scored.into_iter().map(|(id, score)| self.hit(id, score)).collect()
    }

    /// Exact cosine (dot of normalised vectors) for the candidates; the best `n`.
    fn rescore(&self, q: &[f32], cands: &[(i64, f32)], n: usize) -> Result<Vec<(i64, f32)>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT embedding FROM chunks WHERE id = ?1").map_err(db)?;
        let mut out = Vec::with_capacity(cands.len());
        for (id, _) in cands {
            let b: Vec<u8> = st.query_row([id], |r| r.get(0)).map_err(db)?;
            out.push((*id, floats(&b).iter().zip(q).map(|(a, b)| a * b).sum::<f32>()));
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(n);
        Ok(out)
    }

    /// BM25 within the collection: FTS5 finds the chunks holding each of the query's words
    /// (matched as terms, so user text never reaches FTS5's query syntax), and the score uses
    /// only this collection's statistics (its chunk count, each word's document frequency in
    /// it, its mean chunk length). FTS5's own rank uses the index that every collection shares,
    /// so its scores would tell whether other keys' documents hold a word.
    fn keyword(
        &self,
        live: &Live,
        text: &str,
        n: usize,
        allow: &dyn Fn(i64) -> bool,
    ) -> Result<Vec<(i64, f32)>, StoreError> {
        let total = live.index.len();
        let postings = self.postings(live, text)?;
        if postings.is_empty() || total == 0 {
            return Ok(Vec::new());
        }
        let mean = self.mean_len(live)?;
        let mut scores: HashMap<i64, f32> = HashMap::new();
        let mut texts = self.conn.prepare_cached("SELECT text FROM chunks WHERE id = ?1").map_err(db)?;
        let mut lens: HashMap<i64, (f64, HashMap<String, u32>)> = HashMap::new();
        for (word, ids) in &postings {
            let idf = bm25_idf(total as f64, ids.len() as f64);
            for &id in ids.iter().filter(|&&id| live.index.doc_of(id).is_some_and(allow)) {
                if !lens.contains_key(&id) {
                    let t: String = texts.query_row([id], |r| r.get(0)).map_err(db)?;
                    lens.insert(id, (t.chars().count() as f64, term_counts(&t)));
                }
                let (len, tf) = &lens[&id];
                let f = f64::from(tf.get(word).copied().unwrap_or(1));
                *scores.entry(id).or_default() += (idf * bm25_tf(f, *len, mean)) as f32;
            }
        }
        let mut out: Vec<(i64, f32)> = scores.into_iter().collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(n);
        Ok(out)
    }

    /// The chunks of this collection holding each of the query's words that can rank: a word
    /// in more than a tenth of the collection's chunks (a stop word, near-zero weight) is
    /// dropped, unless every word is that common (then the rarest is kept).
    fn postings(&self, live: &Live, text: &str) -> Result<Vec<(String, Vec<i64>)>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?1").map_err(db)?;
        let mut found = Vec::new();
        for w in query_words(text) {
            let rows = st.query_map([format!("\"{}\"", w.replace('"', ""))], |r| r.get::<_, i64>(0)).map_err(db)?;
            let mut ids = Vec::new();
            for id in rows {
                let id = id.map_err(db)?;
                if live.index.doc_of(id).is_some() {
                    ids.push(id);
                }
            }
            if !ids.is_empty() {
                found.push((w, ids));
            }
        }
        found.sort_by_key(|(_, ids)| ids.len());
        let common = (live.index.len() / 10).max(50);
        let rare = found.iter().take_while(|(_, ids)| ids.len() <= common).count();
        found.truncate(rare.max(1));
        Ok(found)
    }

    /// The collection's mean chunk length in characters (cached until it changes).
    fn mean_len(&self, live: &Live) -> Result<f64, StoreError> {
        if let Some(m) = live.mean_len.get() {
            return Ok(m);
        }
        let m: f64 = self
            .conn
            .query_row(
                "SELECT COALESCE(AVG(LENGTH(c.text)), 1.0) FROM chunks c JOIN documents d ON d.id = c.document_id \
                 WHERE d.collection_id = ?1",
                [live.id],
                |r| r.get(0),
            )
            .map_err(db)?;
        live.mean_len.set(Some(m.max(1.0)));
        Ok(m.max(1.0))
    }

    fn hit(&self, id: i64, score: f32) -> Result<Hit, StoreError> {
        self.conn
            .query_row(
                "SELECT c.id, c.document_id, d.name, d.title, c.text, c.page, c.section, c.start, c.end \
                 FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ?1",
                [id],
                |r| {
                    Ok(Hit {
                        chunk_id: r.get(0)?,
                        document_id: r.get(1)?,
                        document: r.get(2)?,
                        title: r.get(3)?,
                        text: r.get(4)?,
                        page: r.get(5)?,
                        section: r.get(6)?,
                        start: r.get::<_, i64>(7)? as usize,
                        end: r.get::<_, i64>(8)? as usize,
                        score,
                    })
                },
            )
            .map_err(db)
    }
}

/// BM25's inverse document frequency of a word in `df` of `n` chunks (always positive).
fn bm25_idf(n: f64, df: f64) -> f64 {
    ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
}

/// BM25's term-frequency part (k1 = 1.2, b = 0.75) for `f` occurrences in a chunk of `len`
/// characters where chunks average `mean`.
fn bm25_tf(f: f64, len: f64, mean: f64) -> f64 {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;
    f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * len / mean))
}

/// How often each word (as [`query_words`] splits and folds them) occurs in `text`.
fn term_counts(text: &str) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    for w in text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()) {
        *out.entry(w.to_lowercase()).or_default() += 1;
    }
    out
}
