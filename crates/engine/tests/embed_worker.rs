//! The embedding worker against a fake backend: packing inputs of concurrent requests into
//! shared decode calls, order, limits, truncation, rerank pairs and cancellation.
//!
//! Some tests hold the fake backend's gate (a std mutex) across awaits on purpose: the worker
//! runs on its own thread and blocks on it, so requests pile up to be batched.
#![allow(clippy::await_holding_lock)]

use hearth_engine::backend::{Backend, BackendInfo, BackendLoader, BatchItem, LoadSpec, Token};
use hearth_engine::error::{DecodeError, GrammarError, LoadError};
use hearth_engine::tokenizer::testing::ByteVocab;
use hearth_engine::{
    EmbedInput, EmbedRequest, EngineError, EngineSettings, ModelInfo, ModelKind, ModelManager, Pooling, Registry,
    SamplingParams, SpecialTokens, TemplateSource,
};
use std::sync::{Arc, Mutex};

const CLS: Token = 1;
const SEP: Token = 2;

/// Tokens are the text's bytes wrapped in CLS/SEP; an input's "embedding" is
/// `[length, first token, last token]`, its rank logit the length. Calls wait on `gate`.
struct FakeEmbed {
    spec: LoadSpec,
    /// Input count of every embed call.
    calls: Arc<Mutex<Vec<usize>>>,
    /// The second token (first text byte) of every input of every call.
    firsts: Arc<Mutex<Vec<Vec<Token>>>>,
    gate: Arc<Mutex<()>>,
}

impl Backend for FakeEmbed {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            n_ctx: self.spec.n_ctx,
            n_kv: self.spec.n_kv,
            n_slots: self.spec.n_slots,
            n_batch: self.spec.n_batch,
            n_vocab: 300,
            n_embd: 3,
            pooling: Some(self.spec.pooling),
            special: SpecialTokens {
                bos: Some(CLS),
                eos: Some(SEP),
                sep: Some(SEP),
                add_bos: true,
                add_eos: true,
                add_sep: false,
            },
            ..Default::default()
        }
    }
    fn piece(&self, token: Token) -> Vec<u8> {
        vec![token.saturating_sub(10) as u8]
    }
    fn is_eog(&self, _token: Token) -> bool {
        false
    }
    fn start_sequence(&mut self, _slot: usize, _params: &SamplingParams) -> Result<(), GrammarError> {
        Ok(())
    }
    fn decode(&mut self, _batch: &[BatchItem]) -> Result<(), DecodeError> {
        Err(DecodeError::Library(-1))
    }
    fn sample(&mut self, _slot: usize, _row: usize) -> Token {
        0
    }
    fn truncate_kv(&mut self, _slot: usize, _keep: u32) -> bool {
        true
    }
    fn embed(&mut self, inputs: &[&[Token]]) -> Result<Vec<Vec<f32>>, DecodeError> {
        let _wait = self.gate.lock().unwrap();
        let total: usize = inputs.iter().map(|i| i.len()).sum();
        assert!(total <= self.spec.n_batch && inputs.len() <= self.spec.n_slots, "over the batch limits");
        self.calls.lock().unwrap().push(inputs.len());
        self.firsts.lock().unwrap().push(inputs.iter().map(|t| t.get(1).copied().unwrap_or(0)).collect());
        Ok(inputs.iter().map(|t| vec![t.len() as f32, t[0] as f32, t[t.len() - 1] as f32]).collect())
    }
}

#[derive(Default)]
struct Loader {
    calls: Arc<Mutex<Vec<usize>>>,
    firsts: Arc<Mutex<Vec<Vec<Token>>>>,
    gate: Arc<Mutex<()>>,
}

impl BackendLoader for Loader {
    fn run(&self, spec: &LoadSpec, serve: &mut dyn FnMut(&mut dyn Backend)) -> Result<(), LoadError> {
        let (calls, firsts, gate) = (self.calls.clone(), self.firsts.clone(), self.gate.clone());
        serve(&mut FakeEmbed { spec: spec.clone(), calls, firsts, gate });
        Ok(())
    }
    /// Text bytes + 10, wrapped in CLS (1) and SEP (2).
    fn vocab(&self, _model: &ModelInfo) -> Result<Arc<dyn hearth_engine::Vocab>, LoadError> {
        Ok(Arc::new(ByteVocab { controls: Vec::new(), add_bos: true, add_eos: true }))
    }
}

fn manager(loader: Arc<Loader>, pooling: Pooling, batch_tokens: usize, max_inputs: usize) -> ModelManager {
    let info = ModelInfo {
        id: "emb".into(),
        path: "/nonexistent/emb.gguf".into(),
        arch: "bert".into(),
        n_params: 0,
        quant: "F16".into(),
        n_ctx_train: 32,
        template: TemplateSource::Builtin("chatml"),
        kind: ModelKind::Embedding,
        pooling: Some(pooling),
        n_embd: 3,
        kv_bytes_per_token: 0,
        size_bytes: 0,
        created: 0,
    };
    let settings =
        EngineSettings { embed_batch_tokens: batch_tokens, embed_max_inputs: max_inputs, ..Default::default() };
    ModelManager::new(Registry::from_models(vec![info]), loader, settings, None)
}

fn texts(t: &[&str]) -> EmbedRequest {
    EmbedRequest { inputs: t.iter().map(|s| EmbedInput::Text(s.to_string())).collect(), truncate: false }
}

#[tokio::test]
async fn outputs_keep_input_order_and_count_tokens() {
    let m = manager(Arc::new(Loader::default()), Pooling::Mean, 64, 8);
    let h = m.get_embedding("emb").await.unwrap();
    let out = h.embed(texts(&["a", "bbb", "cc"])).await.unwrap();
    let lens: Vec<f32> = out.vectors.iter().map(|v| v[0]).collect();
    assert_eq!(lens, [3.0, 5.0, 4.0]);
    assert_eq!(out.prompt_tokens, 12);
    let tokens = EmbedRequest { inputs: vec![EmbedInput::Tokens(vec![50, 60])], truncate: false };
    assert_eq!(h.embed(tokens).await.unwrap().vectors[0], [2.0, 50.0, 60.0], "token inputs are used as given");
}

#[tokio::test]
async fn a_large_request_is_split_under_the_budget() {
    let loader = Arc::new(Loader::default());
    let m = manager(loader.clone(), Pooling::Mean, 32, 8);
    let h = m.get_embedding("emb").await.unwrap();
    // 20 inputs of 4 tokens: at most 8 per call (count limit), 32 tokens (budget).
    let out = h.embed(texts(&["ab"; 20])).await.unwrap();
    assert_eq!(out.vectors.len(), 20);
    assert_eq!(*loader.calls.lock().unwrap(), [8, 8, 4]);
}

#[tokio::test]
async fn an_input_longer_than_the_budget_goes_alone() {
    let loader = Arc::new(Loader::default());
    let m = manager(loader.clone(), Pooling::Mean, 8, 4);
    let h = m.get_embedding("emb").await.unwrap();
    let out = h.embed(texts(&["a", "abcdefghijkl", "b", "c"])).await.unwrap();
    assert_eq!(out.vectors[1][0], 14.0, "accepted up to the model's window (32), not the budget (8)");
    assert_eq!(*loader.calls.lock().unwrap(), [1, 1, 2]);
}

#[tokio::test]
async fn concurrent_requests_share_decode_calls() {
    let loader = Arc::new(Loader::default());
    let m = manager(loader.clone(), Pooling::Mean, 512, 64);
    let h = m.get_embedding("emb").await.unwrap();
    // Hold the backend so that all requests queue up behind the first call.
    let gate = loader.gate.lock().unwrap();
    let first = tokio::spawn({
        let h = h.clone();
        async move { h.embed(texts(&["first"])).await }
    });
    let waiting = |n: usize| {
        let h = h.clone();
        async move {
            while h.stats.waiting.load(std::sync::atomic::Ordering::Relaxed) != n {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
    };
    waiting(0).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let rest: Vec<_> = (0..16)
        .map(|i| {
            let h = h.clone();
            tokio::spawn(async move { h.embed(texts(&[&"x".repeat(i + 1)])).await })
        })
        .collect();
    waiting(16).await;
    drop(gate);
    first.await.unwrap().unwrap();
    for (i, r) in rest.into_iter().enumerate() {
        assert_eq!(r.await.unwrap().unwrap().vectors[0][0], (i + 3) as f32, "each request gets its own output");
    }
    let calls = loader.calls.lock().unwrap().clone();
    assert!(calls.iter().any(|&n| n >= 16), "16 waiting one-input requests were evaluated together: {calls:?}");
}

#[tokio::test]
async fn a_small_request_is_not_stuck_behind_a_large_one() {
    let loader = Arc::new(Loader::default());
    let m = manager(loader.clone(), Pooling::Mean, 32, 8);
    let h = m.get_embedding("emb").await.unwrap();
    let gate = loader.gate.lock().unwrap();
    let big = h.submit_embed(h.validate_embed(texts(&["bb"; 100])).await.unwrap()).unwrap();
    while h.stats.waiting.load(std::sync::atomic::Ordering::Relaxed) > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let small = h.submit_embed(h.validate_embed(texts(&["ss"])).await.unwrap()).unwrap();
    drop(gate);
    small.await.unwrap().unwrap();
    big.await.unwrap().unwrap();
    let firsts = loader.firsts.lock().unwrap().clone();
    let s = Token::from(b's') + 10;
    let when = firsts.iter().position(|call| call.contains(&s)).unwrap();
    assert!(when <= 1, "the small request rode in the first call after it arrived: {firsts:?}");
    assert_eq!(firsts.len(), 13, "100 + 1 inputs of 4 tokens, 8 per call");
}

#[tokio::test]
async fn too_long_inputs_are_refused_or_truncated_keeping_sep() {
    let m = manager(Arc::new(Loader::default()), Pooling::Mean, 64, 8);
    let h = m.get_embedding("emb").await.unwrap();
    let long = "y".repeat(40);
    let err = h.embed(texts(&["ok", &long])).await.unwrap_err();
    assert_eq!(err, EngineError::InputTooLong { index: 1, tokens: 42, limit: 32 });
    let mut req = texts(&[&long]);
    req.truncate = true;
    let out = h.embed(req).await.unwrap();
    assert_eq!(out.vectors[0], [32.0, CLS as f32, SEP as f32]);
    assert!(h.embed(EmbedRequest { inputs: vec![EmbedInput::Tokens(vec![999])], truncate: false }).await.is_err());
}

#[tokio::test]
async fn reranker_takes_pairs_only_and_embedder_refuses_pairs() {
    let m = manager(Arc::new(Loader::default()), Pooling::Rank, 64, 8);
    let h = m.get_embedding("emb").await.unwrap();
    let pair = |q: &str, d: &str| EmbedInput::Pair { query: q.into(), document: d.into() };
    let out = h.embed(EmbedRequest { inputs: vec![pair("q", "doc"), pair("q", "d")], truncate: true }).await.unwrap();
    // [CLS] q [SEP] d o c [SEP] = 7 tokens.
    assert_eq!(out.vectors[0], [7.0, CLS as f32, SEP as f32]);
    assert_eq!(out.vectors[1][0], 5.0);
    assert!(matches!(h.embed(texts(&["x"])).await, Err(EngineError::WrongModelKind(_))));

    let m = manager(Arc::new(Loader::default()), Pooling::Mean, 64, 8);
    let h = m.get_embedding("emb").await.unwrap();
    let r = h.embed(EmbedRequest { inputs: vec![pair("q", "d")], truncate: true }).await;
    assert!(matches!(r, Err(EngineError::WrongModelKind(_))));
}

#[tokio::test]
async fn cancelled_requests_are_skipped_and_counted() {
    let loader = Arc::new(Loader::default());
    let m = manager(loader.clone(), Pooling::Mean, 512, 64);
    let h = m.get_embedding("emb").await.unwrap();
    let gate = loader.gate.lock().unwrap();
    let busy = h.submit_embed(h.validate_embed(texts(&["busy"])).await.unwrap()).unwrap();
    let gone = h.validate_embed(texts(&["gone"])).await.unwrap();
    let dropped: Vec<_> = (0..5).map(|_| h.submit_embed(gone.clone()).unwrap()).collect();
    drop(dropped);
    drop(gate);
    busy.await.unwrap().unwrap();
    h.embed(texts(&["after"])).await.unwrap();
    let stats = &h.stats;
    // The worker counts a request just after answering it: wait for the count to settle.
    let finished = || stats.finished.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..200 {
        if finished() == 7 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // The first call may already hold some of the dropped requests; the rest were skipped.
    assert_eq!(finished(), 7);
    assert!(stats.cancelled.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn tokenize_and_detokenize_on_the_request_side() {
    let m = manager(Arc::new(Loader::default()), Pooling::Mean, 64, 8);
    let h = m.get_any("emb").await.unwrap();
    assert_eq!(h.tokenizer().tokenize("ab", true), [CLS, 107, 108, SEP]);
    assert_eq!(h.detokenize(vec![107, 108]).await.unwrap(), "ab");
    assert!(h.detokenize(vec![5000]).await.is_err());
    assert!(matches!(m.get("emb").await, Err(EngineError::WrongModelKind(_))), "not a text model");
}
