//! Model workers in child processes, against a fake backend: this test binary runs itself as
//! the worker (see [`worker_child_entry`]), so crashes, kills, cancellation and backpressure
//! are tested across a real process boundary without llama.cpp.

use hearth_engine::backend::{Backend, BackendInfo, BackendLoader, BatchItem, LoadSpec, Token};
use hearth_engine::error::{DecodeError, GrammarError, LoadError};
use hearth_engine::process::{child, Isolation, WorkerProgram};
use hearth_engine::{
    EngineError, EngineSettings, Event, GenerateRequest, ModelInfo, ModelKind, ModelManager, PromptInput, Registry,
    SamplingParams, TemplateSource, Vocab,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An argument that marks a run of this binary as a worker process (a `--skip` filter, which
/// the test harness accepts and which skips nothing).
const CHILD_MARK: &str = "hearth-worker-child-marker";
/// A prompt holding this token aborts the worker process while decoding it.
const ABORT_TOKEN: Token = b'!' as Token;

/// Tokens are bytes. Each decode sleeps a little, so streams take time; the model predicts
/// the letter after the last one (a..y, wrapping), and never ends by itself.
struct Fake {
    slots: usize,
    n_ctx: u32,
    last: Vec<Token>,
}

impl Backend for Fake {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            n_ctx: self.n_ctx,
            n_kv: self.n_ctx * self.slots as u32,
            n_slots: self.slots,
            n_batch: 64,
            n_vocab: 256,
            ..Default::default()
        }
    }
    fn piece(&self, token: Token) -> Vec<u8> {
        vec![token as u8]
    }
    fn is_eog(&self, _token: Token) -> bool {
        false
    }
    fn start_sequence(&mut self, _slot: usize, _params: &SamplingParams) -> Result<(), GrammarError> {
        Ok(())
    }
    fn decode(&mut self, batch: &[BatchItem]) -> Result<(), DecodeError> {
        if batch.iter().any(|b| b.token == ABORT_TOKEN) {
            std::process::abort();
        }
        std::thread::sleep(Duration::from_millis(3));
        for b in batch {
            self.last[b.slot] = b.token;
        }
        Ok(())
    }
    fn sample(&mut self, slot: usize, _row: usize) -> Token {
        let t = self.last[slot];
        if (u32::from(b'a')..u32::from(b'y')).contains(&t) {
            t + 1
        } else {
            u32::from(b'a')
        }
    }
    fn truncate_kv(&mut self, _slot: usize, _keep: u32) -> bool {
        true
    }
}

struct FakeVocab;

impl Vocab for FakeVocab {
    fn n_vocab(&self) -> u32 {
        256
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

struct FakeLoader;

impl BackendLoader for FakeLoader {
    fn run(&self, spec: &LoadSpec, serve: &mut dyn FnMut(&mut dyn Backend)) -> Result<(), LoadError> {
        if spec.model.id == "unloadable" {
            return Err(LoadError::Unreadable);
        }
        serve(&mut Fake { slots: spec.n_slots, n_ctx: spec.n_ctx, last: vec![0; spec.n_slots] });
        Ok(())
    }
    fn vocab(&self, _model: &ModelInfo) -> Result<Arc<dyn Vocab>, LoadError> {
        Ok(Arc::new(FakeVocab))
    }
}

/// Runs as the worker process when the parent starts this binary with [`CHILD_MARK`].
#[test]
fn worker_child_entry() {
    if !std::env::args().any(|a| a == CHILD_MARK) {
        return;
    }
    let code = child::serve(&FakeLoader, std::io::stdin(), std::io::stdout(), child::ChildOptions::default());
    std::process::exit(code);
}

fn model(id: &str) -> ModelInfo {
    ModelInfo {
        id: id.into(),
        path: format!("/nonexistent/{id}.gguf").into(),
        arch: "llama".into(),
        n_params: 0,
        quant: "F32".into(),
        n_ctx_train: 4096,
        template: TemplateSource::Builtin("chatml"),
        kind: ModelKind::Causal,
        pooling: None,
        n_embd: 0,
        kv_bytes_per_token: 0,
        size_bytes: 0,
        created: 0,
    }
}

fn program() -> WorkerProgram {
    let args = ["worker_child_entry", "--exact", "--nocapture", "--test-threads=1", "--skip", CHILD_MARK];
    WorkerProgram {
        program: std::env::current_exe().expect("the test binary"),
        args: args.iter().map(Into::into).collect(),
    }
}

fn manager() -> ModelManager {
    let settings =
        EngineSettings { parallel: 2, ctx_size: 4096, isolation: Isolation::Process(program()), ..Default::default() };
    let models = vec![model("a"), model("b"), model("unloadable")];
    ModelManager::new(Registry::from_models(models), Arc::new(FakeLoader), settings, None)
}

fn req(text: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        prompt: PromptInput::Text { text: text.into(), add_special: false },
        sampling: SamplingParams::greedy(),
        max_tokens: Some(max_tokens),
        stop: Vec::new(),
        ignore_eos: false,
        logprobs: None,
    }
}

/// Text and the final event of a stream.
async fn collect(rx: &mut tokio::sync::mpsc::Receiver<Event>) -> (String, Option<Event>) {
    let mut text = String::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Text { text: t, .. } => text += &t,
            Event::Started { .. } | Event::Logprobs(_) => {}
            other => return (text, Some(other)),
        }
    }
    (text, None)
}

fn alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie's state is Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_process_streams_the_same_answer_as_a_thread() {
    let m = manager();
    let h = m.get("a").await.unwrap();
    let pid = h.pid().expect("a worker process");
    assert_ne!(pid, std::process::id());
    assert!(h.rss_bytes().is_some_and(|r| r > 0));
    let (text, last) = collect(&mut h.generate(req("abc", 5)).await.unwrap()).await;
    assert_eq!(text, "defgh");
    match last {
        Some(Event::Done { completion, .. }) => assert_eq!(completion.completion_tokens, 5),
        other => panic!("{other:?}"),
    }
    let mut n = h.submit_n(h.validate(req("x", 3)).await.unwrap(), 2).unwrap();
    for rx in &mut n {
        let (text, last) = collect(rx).await;
        assert_eq!(text, "yab", "every choice streams: {last:?}");
    }
    h.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_ends_that_models_streams_only_and_the_next_request_reloads_it() {
    let m = manager();
    let a = m.get("a").await.unwrap();
    let b = m.get("b").await.unwrap();
    let a_pid = a.pid().unwrap();
    let mut a_stream = a.generate(req("abc", 2000)).await.unwrap();
    let mut b_stream = b.generate(req("abc", 300)).await.unwrap();
    assert!(matches!(a_stream.recv().await, Some(Event::Started { .. })));
    // A request that makes the worker abort: the stream in flight and the marked request both
    // end with model_crashed.
    let mut marked = a.generate(req("boom!", 5)).await.unwrap();
    let (_, last) = collect(&mut a_stream).await;
    assert!(matches!(last, Some(Event::Error(EngineError::ModelCrashed { ref model })) if model == "a"), "{last:?}");
    let (_, last) = collect(&mut marked).await;
    assert!(matches!(last, Some(Event::Error(EngineError::ModelCrashed { .. }))), "{last:?}");
    wait_until("the crashed worker is reaped", || !alive(a_pid)).await;
    assert!(!a.is_alive());
    assert_eq!(m.crashes().get("a").map(|c| (c.total, c.failed)), Some((1, true)));
    assert!(m.crashes().get("a").unwrap().last.unwrap().0.contains("signal 6"), "abort is SIGABRT");
    // The other model's stream runs on untouched.
    let (text, last) = collect(&mut b_stream).await;
    assert!(matches!(last, Some(Event::Done { .. })), "{last:?}");
    assert_eq!(text.len(), 300);
    // A new request is refused at once while the handle is dead, then served after a reload.
    assert!(matches!(a.generate(req("abc", 1)).await, Err(EngineError::Unavailable { .. })));
    let again = m.get("a").await.unwrap();
    assert_ne!(again.pid(), Some(a_pid));
    assert_eq!(collect(&mut again.generate(req("abc", 3)).await.unwrap()).await.0, "def");
    assert!(!m.crashes().get("a").unwrap().failed, "loaded again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_crashes_in_a_minute_refuse_the_model_until_an_admin_forgives_it() {
    let m = manager();
    for i in 0..3 {
        let h = m.get("a").await.unwrap_or_else(|e| panic!("load {i}: {e}"));
        let (_, last) = collect(&mut h.generate(req("!", 1)).await.unwrap()).await;
        assert!(matches!(last, Some(Event::Error(EngineError::ModelCrashed { .. }))), "{last:?}");
        wait_until("the worker is dead", || !h.is_alive()).await;
    }
    match m.get("a").await {
        Err(EngineError::CrashLoop { model, crashes: 3, retry_after }) => {
            assert_eq!(model, "a");
            assert!((1..=60).contains(&retry_after), "{retry_after}");
        }
        other => panic!("{other:?}"),
    }
    assert!(m.get("b").await.is_ok(), "other models load");
    m.crashes().forgive("a");
    assert!(m.get("a").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_fails_its_requests_and_queued_ones_are_answered() {
    let m = manager();
    let h = m.get("a").await.unwrap();
    let pid = h.pid().unwrap();
    // Two slots busy and two more waiting behind them.
    let mut streams = Vec::new();
    for _ in 0..4 {
        streams.push(h.generate(req("abc", 4000)).await.unwrap());
    }
    assert!(matches!(streams[0].recv().await, Some(Event::Started { .. })));
    let killed = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(killed.success());
    for s in &mut streams {
        let (_, last) = collect(s).await;
        assert!(matches!(last, Some(Event::Error(EngineError::ModelCrashed { .. }))), "{last:?}");
    }
    assert!(m.crashes().get("a").unwrap().last.unwrap().0.contains("signal 9"));
    assert_eq!(h.stats.waiting.load(std::sync::atomic::Ordering::Relaxed), 0, "nothing is left counted as waiting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_stalls_only_its_own_stream_and_cancel_frees_it() {
    let m = manager();
    let h = m.get("a").await.unwrap();
    let mut idle = h.generate(req("abc", 1000)).await.unwrap();
    let (text, last) = collect(&mut h.generate(req("abc", 400)).await.unwrap()).await;
    assert_eq!(text.len(), 400, "the other stream ran to its end while one client read nothing");
    assert!(matches!(last, Some(Event::Done { .. })));
    let (text, last) = collect(&mut idle).await;
    assert_eq!(text.len(), 1000, "the stalled stream lost nothing");
    assert!(matches!(last, Some(Event::Done { .. })));
    // A dropped receiver becomes a cancel message, which frees the sequence.
    let before = h.stats.cancelled.load(std::sync::atomic::Ordering::Relaxed);
    let mut gone = h.generate(req("abc", 3000)).await.unwrap();
    assert!(matches!(gone.recv().await, Some(Event::Started { .. })));
    drop(gone);
    let stats = h.stats.clone();
    wait_until("the worker counts the cancel", || {
        stats.cancelled.load(std::sync::atomic::Ordering::Relaxed) > before
            && stats.active.load(std::sync::atomic::Ordering::Relaxed) == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unloading_ends_the_worker_process_and_a_failed_load_is_an_error() {
    let m = manager();
    let h = m.get("a").await.unwrap();
    let pid = h.pid().unwrap();
    drop(h);
    assert!(m.unload("a").await.unwrap());
    wait_until("the worker process exits", || !alive(pid)).await;
    assert!(m.crashes().get("a").is_none(), "an unload is not a crash");
    match m.get("unloadable").await {
        Err(EngineError::ModelLoad { reason: LoadError::Unreadable, .. }) => {}
        other => panic!("{other:?}"),
    }
    let b = m.get("b").await.unwrap();
    let pid = b.pid().unwrap();
    drop(b);
    m.shutdown(Duration::from_secs(10)).await;
    assert!(!alive(pid), "shutdown ends the workers");
}
