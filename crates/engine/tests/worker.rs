//! The worker loop and manager against a small fake backend: scheduling, cancellation,
//! backpressure and recovery from a panicking worker, without llama.cpp.
//!
//! A test holds the fake backend's gate (a std mutex) across awaits on purpose: the worker runs
//! on its own thread and blocks on it.
#![allow(clippy::await_holding_lock)]

use hearth_engine::backend::{Backend, BackendInfo, BackendLoader, BatchItem, LoadSpec, Token};
use hearth_engine::error::{DecodeError, GrammarError, LoadError};
use hearth_engine::{
    EngineError, EngineSettings, Event, FinishReason, GenerateRequest, ModelInfo, ModelKind, ModelManager, PromptInput,
    Registry, SamplingParams, TemplateSource, Vocab,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Tokens are bytes; the model "predicts" the byte after the last one, and 0 ends generation.
/// Token 999 (only ever given as a prompt token) makes decode panic (to test recovery).
const PANIC_TOKEN: Token = 999;

struct Fake {
    slots: usize,
    /// Context window per sequence.
    n_ctx: u32,
    /// KV cells in the pool.
    n_kv: u32,
    /// Last token fed per slot.
    last: Vec<Token>,
    /// Every batch size decoded, to check continuous batching.
    batches: Arc<std::sync::Mutex<Vec<usize>>>,
    /// Tokens currently held per slot (a model of the KV cache).
    kv: Vec<usize>,
    /// Every decode call waits for it.
    gate: Arc<std::sync::Mutex<()>>,
}

impl Backend for Fake {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            n_ctx: self.n_ctx,
            n_kv: self.n_kv,
            n_slots: self.slots,
            n_batch: 16,
            n_vocab: 1024,
            ..Default::default()
        }
    }
    fn piece(&self, token: Token) -> Vec<u8> {
        vec![token as u8]
    }
    fn is_eog(&self, token: Token) -> bool {
        token == 0
    }
    fn start_sequence(&mut self, _slot: usize, _params: &SamplingParams) -> Result<(), GrammarError> {
        Ok(())
    }
    fn decode(&mut self, batch: &[BatchItem]) -> Result<(), DecodeError> {
        assert!(batch.len() <= 16, "batch over n_batch");
        let _open = self.gate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if batch.iter().any(|b| b.token == PANIC_TOKEN) {
            panic!("fake backend panics on token {PANIC_TOKEN}");
        }
        self.batches.lock().unwrap().push(batch.len());
        for b in batch {
            assert_eq!(b.pos as usize, self.kv[b.slot], "positions must be contiguous per slot");
            self.kv[b.slot] += 1;
            self.last[b.slot] = b.token;
        }
        Ok(())
    }
    fn sample(&mut self, slot: usize, _row: usize) -> Token {
        let t = self.last[slot];
        if t == u32::from(b'z') {
            0
        } else {
            t + 1
        }
    }
    fn truncate_kv(&mut self, slot: usize, keep: u32) -> bool {
        self.kv[slot] = self.kv[slot].min(keep as usize);
        true
    }
}

/// Tokens are bytes; no special tokens.
struct FakeVocab;

impl Vocab for FakeVocab {
    fn n_vocab(&self) -> u32 {
        1024
    }
    fn tokenize_text(&self, text: &str) -> Vec<Token> {
        text.bytes().map(Token::from).collect()
    }
    fn piece(&self, token: Token) -> Vec<u8> {
        vec![token as u8]
    }
    fn controls(&self) -> Vec<(String, Token)> {
        Vec::new()
    }
    fn special(&self) -> hearth_engine::SpecialTokens {
        hearth_engine::SpecialTokens::default()
    }
}

#[derive(Default)]
struct FakeLoader {
    loads: AtomicUsize,
    batches: Arc<std::sync::Mutex<Vec<usize>>>,
    gate: Arc<std::sync::Mutex<()>>,
}

impl BackendLoader for FakeLoader {
    fn run(&self, spec: &LoadSpec, serve: &mut dyn FnMut(&mut dyn Backend)) -> Result<(), LoadError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let n = spec.n_slots;
        serve(&mut Fake {
            slots: n,
            n_ctx: spec.n_ctx,
            n_kv: spec.n_kv,
            last: vec![0; n],
            batches: self.batches.clone(),
            kv: vec![0; n],
            gate: self.gate.clone(),
        });
        Ok(())
    }
    fn vocab(&self, _model: &ModelInfo) -> Result<Arc<dyn Vocab>, LoadError> {
        Ok(Arc::new(FakeVocab))
    }
}

fn manager(loader: Arc<FakeLoader>, parallel: usize, max_queue: usize) -> ModelManager {
    manager_with(loader, EngineSettings { parallel, max_queue, ..Default::default() })
}

fn manager_with(loader: Arc<FakeLoader>, settings: EngineSettings) -> ModelManager {
    let info = ModelInfo {
        id: "fake".into(),
        path: "/nonexistent/fake.gguf".into(),
        arch: "llama".into(),
        n_params: 0,
        quant: "F32".into(),
        n_ctx_train: 1024,
        template: TemplateSource::Builtin("chatml"),
        kind: ModelKind::Causal,
        pooling: None,
        n_embd: 0,
        kv_bytes_per_token: 0,
        size_bytes: 0,
        created: 0,
    };
    ModelManager::new(Registry::from_models(vec![info]), loader, settings, Some("fake".into()))
}

fn req(text: &str, max_tokens: Option<u32>, stop: &[&str]) -> GenerateRequest {
    GenerateRequest {
        prompt: PromptInput::Text { text: text.into(), add_special: true },
        sampling: SamplingParams::greedy(),
        max_tokens,
        stop: stop.iter().map(|s| s.to_string()).collect(),
        ignore_eos: false,
        logprobs: None,
    }
}

/// Collects text and the final event.
async fn run(rx: &mut tokio::sync::mpsc::Receiver<Event>) -> (String, Option<Event>) {
    let mut text = String::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Text { text: t, .. } => text += &t,
            Event::Started { .. } => {}
            other => return (text, Some(other)),
        }
    }
    (text, None)
}

#[tokio::test]
async fn generates_until_eog_and_counts_tokens() {
    let m = manager(Arc::new(FakeLoader::default()), 2, 8);
    let h = m.get("").await.unwrap();
    let (text, done) = run(&mut h.generate(req("w", None, &[])).await.unwrap()).await;
    assert_eq!(text, "xyz");
    match done {
        Some(Event::Done { finish: FinishReason::Stop, completion }) => {
            assert_eq!(completion.prompt_tokens, 1);
            assert_eq!(completion.completion_tokens, 3);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn max_tokens_and_stop_strings() {
    let m = manager(Arc::new(FakeLoader::default()), 2, 8);
    let h = m.get("fake").await.unwrap();
    let (text, done) = run(&mut h.generate(req("a", Some(4), &[])).await.unwrap()).await;
    assert_eq!(text, "bcde");
    assert!(matches!(done, Some(Event::Done { finish: FinishReason::Length, .. })));
    let (text, done) = run(&mut h.generate(req("a", None, &["ef"])).await.unwrap()).await;
    assert_eq!(text, "bcd");
    assert!(matches!(done, Some(Event::Done { finish: FinishReason::Stop, .. })));
}

#[tokio::test]
async fn context_limit_is_checked_before_admission() {
    let m = manager(Arc::new(FakeLoader::default()), 1, 8);
    let h = m.get("fake").await.unwrap();
    let err = h.generate(req(&"a".repeat(1000), Some(30), &[])).await.unwrap_err();
    assert_eq!(err, EngineError::ContextLengthExceeded { prompt_tokens: 1000, max_tokens: 30, n_ctx: 1024 });
    assert_eq!(h.stats.waiting.load(Ordering::Relaxed), 0, "refused before it reached the worker");
}

#[tokio::test]
async fn concurrent_sequences_share_batches_and_long_prompts_are_chunked() {
    let loader = Arc::new(FakeLoader::default());
    let m = manager(loader.clone(), 4, 8);
    let h = m.get("fake").await.unwrap();
    let mut rxs = Vec::new();
    for _ in 0..4 {
        rxs.push(h.generate(req(&"a".repeat(40), Some(20), &[])).await.unwrap());
    }
    for rx in &mut rxs {
        let (_, done) = run(rx).await;
        assert!(matches!(done, Some(Event::Done { finish: FinishReason::Length, .. })), "{done:?}");
    }
    let batches = loader.batches.lock().unwrap().clone();
    assert!(batches.iter().all(|&b| b <= 16));
    assert!(batches.iter().any(|&b| b > 1 && b < 16), "decode steps mix sequences: {batches:?}");
}

#[tokio::test]
async fn dropped_receiver_cancels_within_a_step_and_frees_the_slot() {
    let m = manager(Arc::new(FakeLoader::default()), 1, 8);
    let h = m.get("fake").await.unwrap();
    // More events than the channel holds: the unread sequence stalls instead of finishing.
    let mut long = req("a", Some(500), &[]);
    long.ignore_eos = true;
    let mut rx = h.generate(long).await.unwrap();
    assert!(matches!(rx.recv().await, Some(Event::Started { .. })));
    drop(rx);
    for _ in 0..500 {
        if h.stats.cancelled.load(Ordering::Relaxed) == 1 && h.stats.active.load(Ordering::Relaxed) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(h.stats.cancelled.load(Ordering::Relaxed), 1);
    let (text, _) = run(&mut h.generate(req("w", None, &[])).await.unwrap()).await;
    assert_eq!(text, "xyz", "the only slot is free again");
}

#[tokio::test]
async fn full_queue_is_overloaded() {
    let m = manager(Arc::new(FakeLoader::default()), 1, 1);
    let h = m.get("fake").await.unwrap();
    // Hold the only slot with a reader that never reads: the worker stalls that sequence.
    let mut held = Vec::new();
    let mut overloaded = false;
    for _ in 0..50 {
        let mut long = req("a", Some(500), &[]);
        long.ignore_eos = true;
        match h.generate(long).await {
            Ok(rx) => held.push(rx),
            Err(EngineError::Overloaded { .. }) => {
                overloaded = true;
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(overloaded, "a bounded queue must refuse work once full");
}

#[tokio::test]
async fn panicking_worker_fails_its_request_and_is_reloaded() {
    let loader = Arc::new(FakeLoader::default());
    let m = manager(loader.clone(), 1, 8);
    let h = m.get("fake").await.unwrap();
    let mut boom = req("", None, &[]);
    boom.prompt = PromptInput::Tokens(vec![1, PANIC_TOKEN]);
    let (_, done) = run(&mut h.generate(boom).await.unwrap()).await;
    assert_eq!(done, None, "the event channel closes without Done");
    for _ in 0..500 {
        if !h.is_alive() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!h.is_alive());
    let h2 = m.get("fake").await.unwrap();
    assert_eq!(loader.loads.load(Ordering::SeqCst), 2, "reloaded on next use");
    let (text, _) = run(&mut h2.generate(req("w", None, &[])).await.unwrap()).await;
    assert_eq!(text, "xyz");
}

#[tokio::test]
async fn request_that_does_not_fit_the_kv_pool_waits_instead_of_failing() {
    // Two slots but KV room for one 600-token reservation at a time.
    let loader = Arc::new(FakeLoader::default());
    let m = manager_with(loader, EngineSettings { parallel: 2, kv_size: 1024, ctx_size: 1024, ..Default::default() });
    let h = m.get("fake").await.unwrap();
    // The first one outlives the channel's buffer, so it stays active until it is read.
    let mut long = req(&"a".repeat(100), Some(500), &[]);
    long.ignore_eos = true;
    let mut first = h.generate(long).await.unwrap();
    assert!(matches!(first.recv().await, Some(Event::Started { .. })));
    let mut second = h.generate(req(&"b".repeat(100), Some(500), &[])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.stats.active.load(Ordering::Relaxed), 1, "the second request waits for KV room");
    let (_, done) = run(&mut first).await;
    assert!(matches!(done, Some(Event::Done { .. })), "{done:?}");
    let (_, done) = run(&mut second).await;
    assert!(matches!(done, Some(Event::Done { .. })), "{done:?}");
}

// Prompts are tokenized on the request's side: while the model's worker is stuck in a decode
// call, tokenizing, detokenizing and validating a long prompt still answer at once.
#[tokio::test]
async fn tokenizing_never_waits_for_the_model_worker() {
    let loader = Arc::new(FakeLoader::default());
    let m = manager(loader.clone(), 2, 8);
    let h = m.get("fake").await.unwrap();
    let closed = loader.gate.lock().unwrap();
    let mut busy = req("a", Some(5), &[]);
    busy.ignore_eos = true;
    let mut rx = h.generate(busy).await.unwrap();
    for _ in 0..500 {
        if h.stats.active.load(Ordering::Relaxed) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let quick = Duration::from_secs(5);
    let n = tokio::time::timeout(quick, h.count_tokens("hello".into())).await.expect("tokenize waited").unwrap();
    assert_eq!(n, 5);
    let text = tokio::time::timeout(quick, h.detokenize(vec![104, 105])).await.expect("detokenize waited").unwrap();
    assert_eq!(text, "hi");
    let long = req(&"b".repeat(1000), Some(30), &[]);
    let err = tokio::time::timeout(quick, h.validate(long)).await.expect("validate waited").unwrap_err();
    assert!(matches!(err, EngineError::ContextLengthExceeded { prompt_tokens: 1000, .. }), "{err:?}");
    // Far too long to fit however it tokenizes: refused without tokenizing.
    let huge = req(&"b".repeat(200_000), Some(4), &[]);
    let err = tokio::time::timeout(quick, h.validate(huge)).await.expect("validate waited").unwrap_err();
    assert_eq!(err, EngineError::PromptTooLong { min_tokens: 50_000, n_ctx: 1024 });
    drop(closed);
    let (_, done) = run(&mut rx).await;
    assert!(matches!(done, Some(Event::Done { .. })), "{done:?}");
}
