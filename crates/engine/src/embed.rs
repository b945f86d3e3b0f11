//! Embedding and reranking requests, and the pure decisions of serving them: fitting inputs to
//! the model's window, building a cross-encoder's (query, document) input, packing inputs of
//! many requests into one decode call, and post-processing pooled outputs.

use crate::backend::{SpecialTokens, Token};
use crate::error::{EngineError, Invalid, Role};
use crate::tokenizer::Tokenizer;
use std::sync::Arc;

/// One input of an embedding or rerank request.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbedInput {
    /// Text; the tokenizer adds the model's special tokens ([CLS] ... [SEP] for BERT).
    Text(String),
    /// Token ids, used as given.
    Tokens(Vec<Token>),
    /// A (query, document) pair for a cross-encoder.
    Pair {
        /// The query, shared by the pairs of one request (held once, tokenized once).
        query: Arc<str>,
        /// The document.
        document: String,
    },
}

/// A validated embedding or rerank request.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    /// The inputs, answered in this order.
    pub inputs: Vec<EmbedInput>,
    /// Cut inputs longer than the model's window instead of rejecting the request.
    pub truncate: bool,
}

/// An embedding or rerank request ready for a worker: every input tokenized and fitted to the
/// model's window. Built by [`crate::ModelHandle::embed`]'s validation on the request's side.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ValidEmbedRequest {
    /// Each input's tokens (none empty, none longer than the window).
    pub inputs: Vec<Vec<Token>>,
}

/// Most tokens (after truncation) all inputs of one embedding or rerank request may hold: the
/// work one request may ask of the model's worker.
pub const MAX_REQUEST_TOKENS: usize = 1 << 18;

impl EmbedRequest {
    /// Tokenizes and fits every input to `limit` tokens, or rejects the whole request. `rank`
    /// says the model is a cross-encoder (pairs only). A query shared by consecutive pairs is
    /// tokenized once.
    ///
    /// # Errors
    /// [`EngineError::WrongModelKind`] for inputs of the other kind of model, and what [`fit`]
    /// refuses.
    pub fn validate(self, tok: &Tokenizer, rank: bool, limit: usize) -> Result<ValidEmbedRequest, EngineError> {
        let special = tok.special();
        let mut out = Vec::with_capacity(self.inputs.len());
        let mut last_query: Option<(Arc<str>, Vec<Token>)> = None;
        let mut total = 0usize;
        for (index, input) in self.inputs.into_iter().enumerate() {
            let tokens = match input {
                EmbedInput::Pair { .. } if !rank => {
                    return Err(EngineError::wrong_kind(Role::Embedder, Role::Reranker))
                }
                EmbedInput::Text(_) | EmbedInput::Tokens(_) if rank => {
                    return Err(EngineError::wrong_kind(Role::Reranker, Role::Embedder));
                }
                EmbedInput::Pair { query, document } => {
                    let q = match last_query.take() {
                        Some((text, tokens)) if Arc::ptr_eq(&text, &query) || text == query => (text, tokens),
                        _ => {
                            let tokens = tok.tokenize(&query, false);
                            (query, tokens)
                        }
                    };
                    let d = tok.tokenize(&document, false);
                    let tokens = pair(&q.1, &d, special, self.truncate.then_some(limit));
                    last_query = Some(q);
                    tokens
                }
                EmbedInput::Text(text) => tok.tokenize(&text, true),
                EmbedInput::Tokens(t) => {
                    tok.check(&t, "input")
                        .map_err(|_| EngineError::invalid("input", Invalid::InputOutsideVocabulary(index)))?;
                    t
                }
            };
            let fitted = fit(tokens, limit, special, self.truncate, index)?;
            total += fitted.len();
            if total > MAX_REQUEST_TOKENS {
                let too_many = Invalid::TooManyTokens(MAX_REQUEST_TOKENS);
                return Err(EngineError::invalid(if rank { "documents" } else { "input" }, too_many));
            }
            out.push(fitted);
        }
        Ok(ValidEmbedRequest { inputs: out })
    }

    /// Bytes of text to tokenize (a query shared by consecutive pairs counts once).
    pub fn text_bytes(&self) -> usize {
        let mut last: Option<&Arc<str>> = None;
        self.inputs
            .iter()
            .map(|i| match i {
                EmbedInput::Text(t) => t.len(),
                EmbedInput::Pair { query, document } => {
                    let shared = last.is_some_and(|l| Arc::ptr_eq(l, query));
                    last = Some(query);
                    if shared {
                        document.len()
                    } else {
                        query.len() + document.len()
                    }
                }
                EmbedInput::Tokens(_) => 0,
            })
            .sum()
    }
}

/// The raw pooled outputs of a request, one per input, in input order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EmbedOutput {
    /// Pooled outputs (not normalised; a reranker's are logits).
    pub vectors: Vec<Vec<f32>>,
    /// Tokens evaluated for all inputs together (after truncation).
    pub prompt_tokens: u32,
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
}

/// The logistic function: a reranker's logit as a relevance score in (0, 1).
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Fits one tokenized input into `limit` tokens: unchanged if it fits, an error naming input
/// `index` unless `truncate`, else cut at the end while keeping a final EOS ([SEP]) the
/// tokenizer added, as sentence-transformers does.
///
/// # Errors
/// [`EngineError::InputTooLong`] when the input does not fit and `truncate` is false, and
/// [`EngineError::InvalidParam`] for an input with no tokens.
pub fn fit(
    mut tokens: Vec<Token>,
    limit: usize,
    special: &SpecialTokens,
    truncate: bool,
    index: usize,
) -> Result<Vec<Token>, EngineError> {
    if tokens.is_empty() {
        return Err(EngineError::invalid("input", Invalid::NoTokens(index)));
    }
    if tokens.len() <= limit {
        return Ok(tokens);
    }
    if !truncate {
        return Err(EngineError::InputTooLong { index, tokens: tokens.len() as u32, limit: limit as u32 });
    }
    let keep_eos = special.add_eos && special.eos.is_some() && tokens.last().copied() == special.eos;
    if keep_eos && limit >= 2 {
        let eos = tokens[tokens.len() - 1];
        tokens.truncate(limit - 1);
        tokens.push(eos);
    } else {
        tokens.truncate(limit);
    }
    Ok(tokens)
}

/// A cross-encoder's input from the query's and document's own tokens (no specials), in the
/// layout the tokenizer uses for pairs: `[BOS] q [EOS] d [EOS]` (`[CLS] q [SEP] d [SEP]` for
/// BERT), with an extra separator after the query where the tokenizer wants one (RoBERTa's
/// `<s> q </s></s> d </s>`). With `limit`, the document is cut (then the query) to fit.
pub fn pair(query: &[Token], document: &[Token], special: &SpecialTokens, limit: Option<usize>) -> Vec<Token> {
    let bos = special.bos.filter(|_| special.add_bos);
    // Without an EOS of its own, the separator ends each text.
    let end = special.eos.filter(|_| special.add_eos).or(special.sep);
    let sep = special.sep.filter(|_| special.add_sep);
    let fixed = usize::from(bos.is_some()) + 2 * usize::from(end.is_some()) + usize::from(sep.is_some());
    let (mut nq, mut nd) = (query.len(), document.len());
    if let Some(limit) = limit {
        let room = limit.saturating_sub(fixed);
        nd = nd.min(room.saturating_sub(nq.min(room)));
        nq = nq.min(room - nd);
    }
    let mut out = Vec::with_capacity(fixed + nq + nd);
    out.extend(bos);
    out.extend_from_slice(&query[..nq]);
    out.extend(end);
    out.extend(sep);
    out.extend_from_slice(&document[..nd]);
    out.extend(end);
    out
}

/// Which inputs go into the next decode call: `jobs[j]` holds the token counts of request j's
/// inputs not yet evaluated (requests in arrival order); the answer is how many of each
/// request's next inputs to take, within `budget` tokens and `max_inputs` inputs.
///
/// Every waiting request first gets one input (so a one-sentence request is not stuck behind a
/// request of thousands), then the rest are filled in arrival order. An input longer than the
/// budget goes alone when nothing else is taken; the caller has fitted it to the model's window.
pub fn plan(jobs: &[&[usize]], budget: usize, max_inputs: usize) -> Vec<usize> {
    let mut take = vec![0; jobs.len()];
    let (mut used, mut n) = (0, 0);
    for first_pass in [true, false] {
        for (j, lens) in jobs.iter().enumerate() {
            while take[j] < lens.len() && n < max_inputs {
                let len = lens[take[j]];
                if n > 0 && used + len > budget {
                    break;
                }
                used += len;
                n += 1;
                take[j] += 1;
                if first_pass {
                    break;
                }
            }
        }
    }
    take
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERT: SpecialTokens =
        SpecialTokens { bos: Some(101), eos: Some(102), sep: Some(102), add_bos: true, add_eos: true, add_sep: false };

    #[test]
    fn fit_rejects_or_truncates_keeping_sep() {
        let t = vec![101, 5, 6, 7, 8, 102];
        assert_eq!(fit(t.clone(), 6, &BERT, false, 0).unwrap(), t);
        let e = fit(t.clone(), 4, &BERT, false, 3).unwrap_err();
        assert_eq!(e, EngineError::InputTooLong { index: 3, tokens: 6, limit: 4 });
        assert_eq!(fit(t, 4, &BERT, true, 0).unwrap(), [101, 5, 6, 102]);
        assert_eq!(fit(vec![1, 2, 3], 2, &SpecialTokens::default(), true, 0).unwrap(), [1, 2]);
        assert!(fit(vec![], 2, &BERT, true, 0).is_err());
    }

    /// ByteVocab that counts the bytes it tokenizes.
    struct Counting(crate::tokenizer::testing::ByteVocab, std::sync::atomic::AtomicUsize);

    impl crate::Vocab for Counting {
        fn n_vocab(&self) -> u32 {
            self.0.n_vocab()
        }
        fn tokenize_text(&self, text: &str) -> Vec<Token> {
            self.1.fetch_add(text.len(), std::sync::atomic::Ordering::Relaxed);
            self.0.tokenize_text(text)
        }
        fn piece(&self, token: Token) -> Vec<u8> {
            self.0.piece(token)
        }
        fn controls(&self) -> Vec<(String, Token)> {
            self.0.controls()
        }
        fn special(&self) -> SpecialTokens {
            self.0.special()
        }
    }

    #[test]
    fn a_shared_query_is_held_counted_and_tokenized_once() {
        let vocab = Arc::new(Counting(Default::default(), Default::default()));
        let tok = crate::Tokenizer::new(vocab.clone());
        let query: Arc<str> = "q".repeat(1000).into();
        let docs = ["ab", "cde", "f"];
        let inputs = docs.iter().map(|d| EmbedInput::Pair { query: query.clone(), document: (*d).into() }).collect();
        let req = EmbedRequest { inputs, truncate: true };
        assert_eq!(req.text_bytes(), 1000 + 6);
        assert_eq!(req.validate(&tok, true, 512).unwrap().inputs.len(), 3);
        assert_eq!(vocab.1.load(std::sync::atomic::Ordering::Relaxed), 1000 + 6, "the query once, each document once");
    }

    #[test]
    fn one_request_may_not_ask_for_unbounded_work() {
        let tok = crate::Tokenizer::new(std::sync::Arc::new(crate::tokenizer::testing::ByteVocab::default()));
        let pairs = |n: usize| EmbedRequest {
            inputs: (0..n).map(|_| EmbedInput::Pair { query: "q".into(), document: "d".repeat(500) }).collect(),
            truncate: true,
        };
        let per_pair = pairs(1).validate(&tok, true, 512).unwrap().inputs[0].len();
        let fit = MAX_REQUEST_TOKENS / per_pair;
        assert!(pairs(fit).validate(&tok, true, 512).is_ok());
        let e = pairs(fit + 1).validate(&tok, true, 512).unwrap_err();
        assert!(matches!(&e, EngineError::InvalidParam { param, .. } if param == "documents"), "{e:?}");
    }

    #[test]
    fn pair_layouts() {
        assert_eq!(pair(&[1, 2], &[3], &BERT, None), [101, 1, 2, 102, 3, 102]);
        let roberta =
            SpecialTokens { bos: Some(0), eos: Some(2), sep: Some(2), add_bos: true, add_eos: true, add_sep: true };
        assert_eq!(pair(&[1], &[3], &roberta, None), [0, 1, 2, 2, 3, 2]);
        let bare = SpecialTokens::default();
        assert_eq!(pair(&[1], &[3], &bare, None), [1, 3]);
    }

    #[test]
    fn pair_cuts_the_document_first() {
        assert_eq!(pair(&[1, 2], &[3, 4, 5, 6], &BERT, Some(7)), [101, 1, 2, 102, 3, 4, 102]);
        // A query longer than the window leaves no document and is cut itself.
        assert_eq!(pair(&[1, 2, 3, 4, 5], &[6], &BERT, Some(5)), [101, 1, 2, 102, 102]);
    }

    #[test]
    fn plan_respects_budget_and_count() {
        assert_eq!(plan(&[&[10, 10, 10]], 25, 8), [2]);
        assert_eq!(plan(&[&[10, 10, 10]], 30, 8), [3]);
        assert_eq!(plan(&[&[10, 10, 10]], 100, 2), [2]);
        assert_eq!(plan(&[&[40]], 30, 8), [1], "an oversized input still goes alone");
        assert_eq!(plan(&[&[40], &[5]], 30, 8), [1, 0]);
        assert_eq!(plan(&[], 30, 8), Vec::<usize>::new());
    }

    #[test]
    fn plan_gives_every_request_a_turn_first() {
        // A big request in front does not starve the one-input requests behind it.
        let big = [10; 100];
        assert_eq!(plan(&[&big, &[10], &[10]], 50, 64), [3, 1, 1]);
        assert_eq!(plan(&[&big, &[10], &[10]], 50, 2), [1, 1, 0]);
        // One that does not fit now is skipped, not waited for.
        assert_eq!(plan(&[&[10, 10], &[45], &[10]], 30, 8), [2, 0, 1]);
    }

    #[test]
    fn normalize_and_sigmoid() {
        let mut v = [3.0, 4.0];
        l2_normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = [0.0, 0.0];
        l2_normalize(&mut z);
        assert_eq!(z, [0.0, 0.0]);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-6);
    }
}
