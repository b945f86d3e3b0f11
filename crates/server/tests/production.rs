//! The production surface on the real model: metrics that parse and move, readiness that flips
//! when the default model is loaded, request ids.

mod common;

use common::*;
use hearth_engine::EngineSettings;
use serde_json::json;

async fn scrape(url: &str) -> prometheus_parse::Scrape {
    let res = reqwest::get(format!("{url}/metrics")).await.expect("scrape");
    assert_eq!(res.status(), 200);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = res.text().await.unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("exposition parses")
}

/// Sum of a metric's samples whose labels include all of `want`.
fn value(s: &prometheus_parse::Scrape, name: &str, want: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name && want.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_parse_and_move_with_requests() {
    let url = serve(shared()).await;
    let before = scrape(&url).await;
    let chat_ok = [("endpoint", "/v1/chat/completions"), ("model", SMOL), ("status", "200")];
    let (status, _) =
        post(&url, "/v1/chat/completions", chat(SMOL, "Say hi.", json!({"max_tokens": 5, "temperature": 0}))).await;
    assert_eq!(status, 200);
    let (status, _, body) =
        post_raw(&url, "/v1/chat/completions", chat(SMOL, "Say hi.", json!({"max_tokens": 5, "stream": true}))).await;
    assert_eq!(status, 200);
    assert!(body.ends_with("data: [DONE]\n\n"));
    let (status, _) = post(&url, "/v1/embeddings", json!({"model": MINILM, "input": ["a", "b", "c"]})).await;
    assert_eq!(status, 200);
    let (status, _) = post(&url, "/v1/chat/completions", json!({"model": SMOL, "messages": []})).await;
    assert_eq!(status, 400);
    let after = scrape(&url).await;
    let delta = |name: &str, l: &[(&str, &str)]| value(&after, name, l) - value(&before, name, l);
    assert!(delta("hearth_requests_total", &chat_ok) >= 2.0);
    assert!(delta("hearth_generated_tokens_total", &[("model", SMOL)]) >= 2.0);
    assert!(delta("hearth_prompt_tokens_total", &[("model", SMOL)]) >= 2.0);
    assert!(delta("hearth_time_to_first_token_seconds_count", &[("model", SMOL)]) >= 2.0);
    assert!(delta("hearth_inter_token_latency_seconds_count", &[("model", SMOL)]) >= 1.0);
    assert!(delta("hearth_embedding_inputs_total", &[("model", MINILM)]) >= 3.0);
    assert!(delta("hearth_rejected_requests_total", &[("reason", "invalid_value")]) >= 1.0);
    assert!(value(&after, "hearth_models_loaded", &[]) >= 2.0);
    assert!(value(&after, "hearth_kv_cache_cells", &[("model", SMOL)]) > 0.0);
    assert!(value(&after, "hearth_model_memory_bytes", &[("model", SMOL)]) > 98e6, "file size plus KV");
    assert!(value(&after, "hearth_model_load_seconds", &[("model", SMOL)]) > 0.0);
    for name in ["hearth_queue_depth", "hearth_active_sequences", "hearth_kv_cache_used_cells"] {
        assert!(after.samples.iter().any(|s| s.metric == name), "{name} is exported");
    }
}

#[tokio::test]
async fn readiness_flips_when_the_default_model_is_loaded() {
    // A manager of its own, so the default model is not loaded yet.
    let models = manager(EngineSettings { ctx_size: 512, parallel: 1, threads: 2, ..Default::default() });
    let url = serve(models.clone()).await;
    let live = reqwest::get(format!("{url}/health/live")).await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = reqwest::get(format!("{url}/health/ready")).await.unwrap();
    assert_eq!(ready.status(), 503);
    models.get("").await.unwrap();
    let ready = reqwest::get(format!("{url}/health/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<serde_json::Value>().await.unwrap()["model"], SMOL);
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let url = serve(shared()).await;
    let c = reqwest::Client::new();
    let res = c.get(format!("{url}/v1/models")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = c.get(format!("{url}/v1/models")).send().await.unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(id.starts_with("req-") && id.len() > 8, "{id}");
    let res = c.get(format!("{url}/nope")).header("x-request-id", "bad id with spaces").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_ne!(res.headers()["x-request-id"], "bad id with spaces", "unprintable ids are replaced");
}

#[tokio::test]
async fn shutdown_lets_streams_run_for_the_grace_then_ends_them_with_an_error_event() {
    use futures::StreamExt;
    let models = shared();
    models.get(SMOL).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (signal_tx, signal_rx) = tokio::sync::oneshot::channel::<()>();
    let state = hearth_server::AppState::new(models, hearth_server::Limits::default());
    let grace = std::time::Duration::from_millis(800);
    let server =
        tokio::spawn(hearth_server::shutdown::serve(listener, state, async { signal_rx.await.unwrap_or(()) }, grace));
    let body = chat(SMOL, "Count to a thousand.", json!({"max_tokens": 1500, "ignore_eos": true, "stream": true}));
    let res = reqwest::Client::new().post(format!("{url}/v1/chat/completions")).json(&body).send().await.unwrap();
    let mut stream = res.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "), "{}", String::from_utf8_lossy(&first));
    let signalled = std::time::Instant::now();
    signal_tx.send(()).unwrap();
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let rest = String::from_utf8(rest).unwrap();
    let ran = signalled.elapsed();
    assert!(ran >= grace, "the stream ran on during the grace period ({ran:?})");
    assert!(rest.matches("\"content\"").count() > 5, "tokens kept coming during the grace");
    assert!(
        rest.trim_end().ends_with(r#""code":"server_shutting_down"}}"#),
        "{}",
        &rest[rest.len().saturating_sub(300)..]
    );
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), server).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "the server returned after draining");
    assert!(reqwest::get(format!("{url}/health/live")).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn openapi_documents_every_route_and_swagger_ui_is_served() {
    let url = serve(shared()).await;
    let doc: serde_json::Value = reqwest::get(format!("{url}/openapi.json")).await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    for r in hearth_server::ROUTES {
        if matches!(r.access, hearth_server::Access::Docs | hearth_server::Access::Ui) {
            continue;
        }
        let op = &doc["paths"][r.doc_path()][r.method.to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} is not in /openapi.json", r.method, r.path);
    }
    let chat = &doc["paths"]["/v1/chat/completions"]["post"];
    assert!(chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap()
        .ends_with("ChatCompletionRequest"));
    assert!(doc["components"]["schemas"]["EmbeddingResponse"].is_object());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    let c = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = c.get(format!("{url}/docs")).send().await.unwrap();
    assert_eq!(r.status(), 308);
    let page = c.get(format!("{url}/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    let init = c.get(format!("{url}/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
}
