//! The second and third wire protocols at the HTTP edge: every error of an Ollama or
//! Anthropic route (the layers' too) comes in that protocol's shape, `x-api-key` is a key,
//! each new route has its own endpoint label, and `/api/delete` removes a model.

mod common;

use common::*;
use hearth_engine::{EngineSettings, ModelManager, Registry};
use hearth_server::http::auth::{hash_key, ApiKey, AuthConfig};
use hearth_server::{AppState, Limits};
use serde_json::{json, Value};
use std::sync::Arc;

async fn serve_state(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hearth_server::app(state)).await });
    url
}

async fn with_key() -> String {
    let key = ApiKey { name: "a".into(), sha256: hash_key("sk-a"), ..ApiKey::default() };
    let auth = AuthConfig { keys: vec![key], public_health: true, public_metrics: true, public_docs: true };
    serve_state(AppState::new(shared(), Limits::default()).with_auth(auth)).await
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn errors_come_in_each_protocols_shape() {
    let url = with_key().await;
    let c = reqwest::Client::new();
    // Ollama: {"error": "..."}, also for a missing key.
    let (s, v) = send(c.post(format!("{url}/api/chat")).json(&json!({"model": SMOL}))).await;
    assert_eq!(s, 401);
    assert!(v["error"].is_string(), "{v}");
    // Anthropic: {"type": "error", "error": {"type", "message"}}.
    let (s, v) = send(c.post(format!("{url}/v1/messages")).json(&json!({}))).await;
    assert_eq!(
        (s, v["type"].as_str(), v["error"]["type"].as_str()),
        (401, Some("error"), Some("authentication_error")),
        "{v}"
    );
    // `x-api-key` is a key like `Authorization: Bearer`.
    let body = json!({"model": "nope", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]});
    let (s, v) = send(c.post(format!("{url}/v1/messages")).header("x-api-key", "sk-a").json(&body)).await;
    assert_eq!((s, v["error"]["type"].as_str()), (404, Some("not_found_error")), "{v}");
    let (s, v) = send(
        c.post(format!("{url}/v1/messages"))
            .header("x-api-key", "sk-a")
            .body("{oops")
            .header("content-type", "application/json"),
    )
    .await;
    assert_eq!((s, v["error"]["type"].as_str()), (400, Some("invalid_request_error")), "{v}");
    let (s, v) =
        send(c.post(format!("{url}/api/generate")).bearer_auth("sk-a").json(&json!({"model": "nope", "prompt": "x"})))
            .await;
    assert_eq!(s, 404);
    assert!(v["error"].as_str().unwrap().contains("nope"), "{v}");
    // OpenAI routes keep OpenAI's shape.
    let (s, v) =
        send(c.post(format!("{url}/v1/responses")).bearer_auth("sk-a").json(&json!({"model": "nope", "input": "x"})))
            .await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("model_not_found")), "{v}");
}

#[tokio::test]
async fn new_routes_have_their_own_endpoint_label() {
    let url = serve(shared()).await;
    let c = reqwest::Client::new();
    c.get(format!("{url}/api/tags")).send().await.unwrap();
    c.post(format!("{url}/api/show")).json(&json!({"model": SMOL})).send().await.unwrap();
    let metrics = c.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
    for endpoint in ["/api/tags", "/api/show"] {
        assert!(metrics.contains(&format!("endpoint=\"{endpoint}\"")), "{endpoint} missing");
    }
}

#[tokio::test]
async fn delete_removes_the_model_file_and_its_entry() {
    // A models folder of its own, holding a link to the real file: deleting removes the link.
    let dir = std::env::temp_dir().join(format!("hearth-delete-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("victim.gguf");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(models_dir().join(format!("{SMOL}.gguf")), &link).unwrap();
    let registry = Registry::scan(&dir, &[], &[]).unwrap();
    let loader = hearth_llama::LlamaLoader::new().unwrap();
    let settings = EngineSettings { ctx_size: 512, parallel: 1, threads: 2, ..Default::default() };
    let models =
        Arc::new(ModelManager::new(registry, Arc::new(loader), common::isolated(settings), Some("victim".into())));
    let url = serve(models).await;
    let c = reqwest::Client::new();
    let (s, _) = send(c.post(format!("{url}/api/generate")).json(&json!({"model": "victim", "prompt": ""}))).await;
    assert_eq!(s, 200, "loaded");
    // No name: refused, never the default model by omission.
    let (s, v) = send(c.delete(format!("{url}/api/delete")).json(&json!({}))).await;
    assert_eq!(s, 400, "{v}");
    let res = c.delete(format!("{url}/api/delete")).json(&json!({"model": "victim:latest"})).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(!link.exists() && models_dir().join(format!("{SMOL}.gguf")).is_file(), "the link went, the file stayed");
    let tags: Value = c.get(format!("{url}/api/tags")).send().await.unwrap().json().await.unwrap();
    assert_eq!(tags["models"], json!([]));
    let (s, _) = send(
        c.post(format!("{url}/api/chat"))
            .json(&json!({"model": "victim", "messages": [{"role": "user", "content": "x"}]})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = send(c.delete(format!("{url}/api/delete")).json(&json!({"name": "victim"}))).await;
    assert_eq!(s, 404);
    std::fs::remove_dir_all(&dir).ok();
}
