//! The in-memory vector index: every chunk's embedding quantised to int8 (one scale per
//! vector), scanned in full for a query; the best candidates are then rescored exactly from
//! the stored f32 vectors. It is rebuilt from the store when the store opens, so the store
//! stays the only source of truth.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Quantised vectors of one collection.
#[derive(Debug, Clone, Default)]
pub struct VectorIndex {
    dim: usize,
    ids: Vec<i64>,
    docs: Vec<i64>,
    codes: Vec<i8>,
    scales: Vec<f32>,
    /// Chunk id -> document id, for keyword results and filters.
    doc_of: std::collections::HashMap<i64, i64>,
}

/// int8 codes and the scale that maps them back (`x ~ code * scale`).
fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return (vec![0; v.len()], 0.0);
    }
    let scale = max / 127.0;
    (v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8).collect(), scale)
}

fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(x, y)| i32::from(*x) * i32::from(*y)).sum()
}

#[derive(PartialEq)]
struct Scored(f32, i64);

impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

impl VectorIndex {
    /// An empty index of `dim`-wide vectors.
    pub fn new(dim: usize) -> Self {
        Self { dim, ..Self::default() }
    }

    /// Vectors held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds chunk `id` of document `doc` (a vector of another width is ignored).
    pub fn insert(&mut self, id: i64, doc: i64, v: &[f32]) {
        if v.len() != self.dim {
            return;
        }
        let (codes, scale) = quantize(v);
        self.ids.push(id);
        self.docs.push(doc);
        self.doc_of.insert(id, doc);
        self.codes.extend_from_slice(&codes);
        self.scales.push(scale);
    }

    /// The document of chunk `id`, if the chunk is in this index.
    pub fn doc_of(&self, id: i64) -> Option<i64> {
        self.doc_of.get(&id).copied()
    }

    /// Drops every chunk of document `doc`.
    pub fn remove_doc(&mut self, doc: i64) {
        self.doc_of.retain(|_, d| *d != doc);
        let dim = self.dim;
        let mut w = 0;
        for r in 0..self.ids.len() {
            if self.docs[r] == doc {
                continue;
            }
            if w != r {
                self.ids[w] = self.ids[r];
                self.docs[w] = self.docs[r];
                self.scales[w] = self.scales[r];
                self.codes.copy_within(r * dim..(r + 1) * dim, w * dim);
            }
            w += 1;
        }
        self.ids.truncate(w);
        self.docs.truncate(w);
        self.scales.truncate(w);
        self.codes.truncate(w * dim);
    }

    /// The `n` chunks with the highest approximate dot product with `q`, among documents
    /// `allow` accepts, best first.
    pub fn candidates(&self, q: &[f32], n: usize, allow: &dyn Fn(i64) -> bool) -> Vec<(i64, f32)> {
        if q.len() != self.dim || n == 0 {
            return Vec::new();
        }
        let (qc, qs) = quantize(q);
        let mut heap: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(n + 1);
        for (r, codes) in self.codes.chunks_exact(self.dim.max(1)).enumerate() {
            if !allow(self.docs[r]) {
                continue;
            }
            let s = dot_i8(&qc, codes) as f32 * qs * self.scales[r];
            if heap.len() < n {
                heap.push(Reverse(Scored(s, self.ids[r])));
            } else if heap.peek().is_some_and(|Reverse(min)| s > min.0) {
                heap.pop();
                heap.push(Reverse(Scored(s, self.ids[r])));
            }
        }
        let mut out: Vec<(i64, f32)> = heap.into_iter().map(|Reverse(Scored(s, id))| (id, s)).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dim: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let v: Vec<f32> = (0..dim)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2000) as f32 / 1000.0 - 1.0
            })
            .collect();
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.into_iter().map(|a| a / n).collect()
    }

    #[test]
    fn candidates_agree_with_exact_search() {
        let dim = 64;
        let mut idx = VectorIndex::new(dim);
        let vs: Vec<Vec<f32>> = (0..500).map(|i| unit(i + 1, dim)).collect();
        for (i, v) in vs.iter().enumerate() {
            idx.insert(i as i64, (i % 10) as i64, v);
        }
        let q = unit(9999, dim);
        let mut exact: Vec<(i64, f32)> =
            vs.iter().enumerate().map(|(i, v)| (i as i64, v.iter().zip(&q).map(|(a, b)| a * b).sum())).collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        let got = idx.candidates(&q, 40, &|_| true);
        // The exact top 10 are all among the 40 candidates (then rescored exactly upstream).
        for (id, _) in &exact[..10] {
            assert!(got.iter().any(|g| g.0 == *id), "{id} missing");
        }
        assert!(idx.candidates(&q, 5, &|d| d == 3).iter().all(|(id, _)| id % 10 == 3));
    }

    #[test]
    fn documents_are_removed_whole() {
        let mut idx = VectorIndex::new(4);
        idx.insert(1, 7, &[1.0, 0.0, 0.0, 0.0]);
        idx.insert(2, 8, &[0.0, 1.0, 0.0, 0.0]);
        idx.insert(3, 7, &[0.0, 0.0, 1.0, 0.0]);
        idx.insert(4, 9, &[1.0, 2.0]);
        assert_eq!(idx.len(), 3, "wrong width ignored");
        idx.remove_doc(7);
        assert_eq!(idx.len(), 1);
        assert_eq!(idx.candidates(&[0.0, 1.0, 0.0, 0.0], 5, &|_| true)[0].0, 2);
    }
}
