//! Shared set-up for the integration tests: the real models fetched by scripts/fetch-models,
//! served on a loopback port chosen by the OS.
#![allow(dead_code, unreachable_pub)]

use hearth_engine::{EngineSettings, ModelManager, Registry};
use hearth_server::AppState;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

pub const SMOL: &str = "SmolLM2-135M-Instruct.Q4_1";
pub const GEMMA: &str = "gemma-3-270m-q4_k_m";
pub const MINILM: &str = "all-MiniLM-L6-v2.F16";
pub const MINILM_Q8: &str = "all-MiniLM-L6-v2.Q8_0";
/// The stand-in cross-encoder `scripts/fetch-models --test-fixtures` writes (MiniLM body, seeded head).
pub const RERANKER: &str = "minilm-rerank-standin";

pub fn hearth_home() -> PathBuf {
    std::env::var_os("HEARTH_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/hearth"))
}

pub fn models_dir() -> PathBuf {
    let dir = hearth_home().join("models");
    assert!(dir.join(format!("{SMOL}.gguf")).is_file(), "run scripts/fetch-models first ({} missing)", dir.display());
    dir
}

/// `settings` with the workers in processes of the `hearth` binary that `HEARTH_TEST_WORKER`
/// names (scripts/test sets it, so these tests run as `hearth serve` does), else in threads.
pub fn isolated(settings: EngineSettings) -> EngineSettings {
    let Some(program) = std::env::var_os("HEARTH_TEST_WORKER") else { return settings };
    let pid = std::process::id().to_string();
    let args = ["worker", "--log", "warn", "--parent-pid", pid.as_str()].map(std::ffi::OsString::from).to_vec();
    let isolation = hearth_engine::process::Isolation::Process(hearth_engine::process::WorkerProgram {
        program: program.into(),
        args,
    });
    EngineSettings { isolation, ..settings }
}

/// A manager over the real models with its own workers (plus the test reranker).
pub fn manager(settings: EngineSettings) -> Arc<ModelManager> {
    let settings = isolated(settings);
    let scanned = Registry::scan(&models_dir(), &[], &[]).expect("scan models");
    let standin = hearth_home().join(format!("test-models/{RERANKER}.gguf"));
    let standin = hearth_engine::ModelInfo::from_file(&standin)
        .unwrap_or_else(|e| panic!("{e}: run scripts/fetch-models --test-fixtures"));
    let mut models: Vec<_> = scanned.models().cloned().collect();
    models.push(standin);
    let registry = Registry::from_models(models).with_aliases(&[("smollm2".into(), SMOL.into())]);
    let loader = hearth_llama::LlamaLoader::new().expect("llama.cpp init");
    Arc::new(ModelManager::new(registry, Arc::new(loader), settings, Some(SMOL.into())))
}

/// One manager shared by the tests of a binary, so each model is loaded once.
pub fn shared() -> Arc<ModelManager> {
    static SHARED: OnceLock<Arc<ModelManager>> = OnceLock::new();
    SHARED
        .get_or_init(|| manager(EngineSettings { ctx_size: 2048, parallel: 4, threads: 2, ..Default::default() }))
        .clone()
}

/// Serves `models` on 127.0.0.1 with an OS-assigned port; returns the base URL.
pub async fn serve(models: Arc<ModelManager>) -> String {
    serve_with(models, hearth_server::Limits::default()).await
}

/// Like [`serve`], with the given admission limits.
pub async fn serve_with(models: Arc<ModelManager>, limits: hearth_server::Limits) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = hearth_server::app(AppState::new(models, limits));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// POSTs JSON, returns status and parsed body.
pub async fn post(url: &str, path: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new().post(format!("{url}{path}")).json(&body).send().await.expect("send");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
}

/// POSTs JSON and returns the raw streamed body.
pub async fn post_raw(url: &str, path: &str, body: Value) -> (u16, String, String) {
    let res = reqwest::Client::new().post(format!("{url}{path}")).json(&body).send().await.expect("send");
    let status = res.status().as_u16();
    let ctype = res.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_string()).unwrap_or_default();
    (status, ctype, res.text().await.expect("body"))
}

pub fn chat(model: &str, user: &str, extra: Value) -> Value {
    let mut v = serde_json::json!({
        "model": model,
        "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": user}],
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v
}

/// Asserts an OpenAI-shaped error body and returns its `error` object.
pub fn error_of(body: &Value) -> &Value {
    let e = &body["error"];
    assert!(e["message"].is_string(), "no error.message in {body}");
    assert!(e["type"].is_string(), "no error.type in {body}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "param/code missing in {body}");
    e
}
