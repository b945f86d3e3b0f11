//! API keys on every route (the list the router is built from), per-key rate limits, CORS,
//! the body size limit and the request timeout.

mod common;

use common::*;
use hearth_server::http::auth::{hash_key, ApiKey, AuthConfig};
use hearth_server::{Access, AppState, Limits, Protocol, ROUTES};
use serde_json::json;
use std::time::Duration;

fn key(name: &str, secret: &str, rpm: Option<u32>, tpm: Option<u64>) -> ApiKey {
    ApiKey {
        name: name.into(),
        sha256: hash_key(secret),
        requests_per_minute: rpm,
        tokens_per_minute: tpm,
        ..ApiKey::default()
    }
}

async fn serve_state(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hearth_server::app(state)).await });
    url
}

async fn with_keys(keys: Vec<ApiKey>, public_health: bool) -> String {
    let auth = AuthConfig { keys, public_health, public_metrics: false, public_docs: public_health };
    serve_state(AppState::new(shared(), Limits::default()).with_auth(auth)).await
}

async fn call(url: &str, method: &str, path: &str, bearer: Option<&str>) -> reqwest::Response {
    let c = reqwest::Client::new();
    let path = path
        .replace("{id}", SMOL)
        .replace("{*id}", SMOL)
        .replace("{*rest}", "index.css")
        .replace("{*file}", "index.js")
        .replace("{name}", "c");
    let mut req = match method {
        "GET" => c.get(format!("{url}{path}")),
        "DELETE" => c.delete(format!("{url}{path}")),
        "PATCH" => c.patch(format!("{url}{path}")).json(&json!({})),
        _ => c.post(format!("{url}{path}")).json(&json!({})),
    };
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    req.send().await.unwrap()
}

/// A 401 body in the route's protocol's shape (OpenAI's carries the code).
fn assert_unauthorized(protocol: Protocol, body: &serde_json::Value, code: &str) {
    match protocol {
        Protocol::OpenAi => assert_eq!(error_of(body)["code"], code),
        Protocol::Ollama => assert!(body["error"].as_str().is_some_and(|m| m.contains("API key")), "{body}"),
        Protocol::Anthropic => assert_eq!(body["error"]["type"], "authentication_error", "{body}"),
    }
}

#[tokio::test]
async fn every_route_needs_a_key_except_public_probes() {
    let url = with_keys(vec![key("alice", "sk-alice", None, None)], true).await;
    for r in ROUTES {
        let res = call(&url, r.method, r.path, None).await;
        if !matches!(r.access, Access::Key | Access::Admin) {
            assert_ne!(res.status(), 401, "{} {} is public", r.method, r.path);
            continue;
        }
        assert_eq!(res.status(), 401, "{} {} without a key", r.method, r.path);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_unauthorized(r.protocol, &body, "missing_api_key");
        let res = call(&url, r.method, r.path, Some("sk-wrong")).await;
        assert_eq!(res.status(), 401, "{} {} with a wrong key", r.method, r.path);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_unauthorized(r.protocol, &body, "invalid_api_key");
        let res = call(&url, r.method, r.path, Some("sk-alice")).await;
        assert_ne!(res.status(), 401, "{} {} with the key", r.method, r.path);
        // Only admin keys manage models and read the metrics.
        if r.access == Access::Admin {
            assert_eq!(res.status(), 403, "{} {} needs an admin key", r.method, r.path);
            let body: serde_json::Value = res.json().await.unwrap();
            assert!(body.to_string().contains("admin"), "{body}");
            continue;
        }
        // The handler the table gives a route answers the method the table says.
        assert_ne!(res.status(), 405, "{} {} is served for another method", r.method, r.path);
    }
    // With public health and docs off, probes and docs need the key too.
    let url = with_keys(vec![key("alice", "sk-alice", None, None)], false).await;
    for r in ROUTES.iter().filter(|r| !matches!(r.access, Access::Key | Access::Admin | Access::Ui)) {
        assert_eq!(call(&url, r.method, r.path, None).await.status(), 401, "{}", r.path);
    }
    // Unknown routes do not reveal themselves without a key either.
    assert_eq!(call(&url, "GET", "/nope", None).await.status(), 401);
}

#[tokio::test]
async fn requests_per_minute_refuse_then_recover() {
    // 30/minute: one request comes back every 2 s.
    let url = with_keys(vec![key("bob", "sk-bob", Some(30), None)], true).await;
    // The burst is 30; on a busy machine one more may come back while they are sent, so count
    // the answers until the first refusal against the time they took.
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    while statuses.len() < 60 {
        let res = call(&url, "GET", "/v1/models", Some("sk-bob")).await;
        let refused = res.status() == 429;
        statuses.push(res);
        if refused {
            break;
        }
    }
    let refilled = (started.elapsed().as_secs_f64() / 2.0).ceil() as usize;
    let last = statuses.pop().unwrap();
    assert!(statuses.iter().all(|r| r.status() == 200));
    assert!((30..=30 + refilled).contains(&statuses.len()), "{} let in", statuses.len());
    assert_eq!(statuses[0].headers()["x-ratelimit-limit-requests"], "30");
    assert_eq!(last.status(), 429);
    let wait: u64 = last.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(last.headers()["x-ratelimit-remaining-requests"], "0");
    let body: serde_json::Value = last.json().await.unwrap();
    assert_eq!(error_of(&body)["code"], "rate_limit_exceeded");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(call(&url, "GET", "/v1/models", Some("sk-bob")).await.status(), 200, "recovered");
}

#[tokio::test]
async fn tokens_per_minute_count_prompt_and_completion() {
    let url = with_keys(vec![key("carol", "sk-carol", None, Some(60))], true).await;
    let c = reqwest::Client::new();
    let body = chat(SMOL, "Hello", json!({"max_tokens": 8, "temperature": 0}));
    let mut refused = None;
    for i in 0..5 {
        let res =
            c.post(format!("{url}/v1/chat/completions")).bearer_auth("sk-carol").json(&body).send().await.unwrap();
        if res.status() == 429 {
            refused = Some((i, res));
            break;
        }
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["x-ratelimit-limit-tokens"], "60");
    }
    let (i, res) = refused.expect("the token budget runs out");
    assert!(i >= 1, "the first request fits");
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn tokens_of_a_cancelled_stream_are_charged() {
    use futures::StreamExt;
    let url = with_keys(vec![key("dave", "sk-dave", None, Some(50))], true).await;
    let c = reqwest::Client::new();
    let body = json!({"model": SMOL, "prompt": "Once upon a time", "max_tokens": 400, "ignore_eos": true,
        "temperature": 0, "stream": true});
    let res = c.post(format!("{url}/v1/completions")).bearer_auth("sk-dave").json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut events = 0;
    while events < 80 {
        let chunk = stream.next().await.expect("more events").unwrap();
        events += String::from_utf8_lossy(&chunk).matches("data: {").count();
    }
    // The client goes away after about 80 tokens, with no usage ever sent to it.
    drop(stream);
    let again = c.post(format!("{url}/v1/completions")).bearer_auth("sk-dave").json(&body).send().await.unwrap();
    assert_eq!(again.status(), 429, "the 80 tokens it received were charged against 50 a minute");
}

/// Every choice's tokens count as they are produced, not only the first's: four choices
/// cancelled after 200 tokens of them in all are charged for those 200 (and the prompt); the
/// first choice's quarter alone would leave room under 120 a minute. (200, not fewer: the
/// bucket refills 2 tokens a second, so on a slow machine a small overdraft is repaid before
/// the second request.)
#[tokio::test]
async fn tokens_of_every_choice_are_charged_as_they_come() {
    use futures::StreamExt;
    let url = with_keys(vec![key("erin", "sk-erin", None, Some(120))], true).await;
    let c = reqwest::Client::new();
    let body = chat(
        SMOL,
        "Tell a story.",
        json!({"max_tokens": 400, "ignore_eos": true, "temperature": 0.7, "n": 4,
        "stream": true}),
    );
    let post = |body| c.post(format!("{url}/v1/chat/completions")).bearer_auth("sk-erin").json(body).send();
    let res = post(&body).await.unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    // Four role chunks, then a token each.
    let mut events = 0;
    while events < 204 {
        let chunk = stream.next().await.expect("more events").unwrap();
        events += String::from_utf8_lossy(&chunk).matches("data: {").count();
    }
    drop(stream);
    assert_eq!(post(&body).await.unwrap().status(), 429, "200 tokens over four choices were charged against 120");
}

/// A stream that runs into the request timeout pays for what it generated.
#[tokio::test]
async fn tokens_of_a_timed_out_stream_are_charged() {
    let auth = AuthConfig {
        keys: vec![key("finn", "sk-finn", None, Some(20))],
        public_health: true,
        public_metrics: false,
        public_docs: true,
    };
    let limits = Limits { request_timeout: std::time::Duration::from_millis(3000), ..Limits::default() };
    let url = serve_state(AppState::new(shared(), limits).with_auth(auth)).await;
    let c = reqwest::Client::new();
    let body = json!({"model": SMOL, "prompt": "Once upon a time", "max_tokens": 1500, "ignore_eos": true,
        "stream": true});
    let res = c.post(format!("{url}/v1/completions")).bearer_auth("sk-finn").json(&body).send().await.unwrap();
    let text = res.text().await.unwrap();
    let tokens = text.matches("data: {").count();
    assert!(text.contains("timeout") && tokens > 20, "it ran into the timeout after {tokens} events: {text:.300}");
    let again = c.post(format!("{url}/v1/completions")).bearer_auth("sk-finn").json(&body).send().await.unwrap();
    assert_eq!(again.status(), 429, "{tokens} tokens were charged against 20 a minute");
}

#[tokio::test]
async fn cors_only_for_configured_origins() {
    let state = AppState::new(shared(), Limits::default()).with_cors(vec!["https://app.example".into()]);
    let url = serve_state(state).await;
    let c = reqwest::Client::new();
    let pre = c
        .request(reqwest::Method::OPTIONS, format!("{url}/v1/chat/completions"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(pre.headers()["access-control-allow-origin"], "https://app.example");
    let other = c.get(format!("{url}/v1/models")).header("origin", "https://evil.example").send().await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // Default: no CORS headers at all.
    let url = serve(shared()).await;
    let res = c.get(format!("{url}/v1/models")).header("origin", "https://app.example").send().await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn body_limit_and_request_timeout() {
    let limits = Limits { max_body_bytes: 4096, request_timeout: Duration::from_secs(3), ..Limits::default() };
    let models = shared();
    models.get(SMOL).await.unwrap();
    let url = serve_state(AppState::new(models, limits)).await;
    let big = chat(SMOL, &"x".repeat(10_000), json!({}));
    let (status, v) = post(&url, "/v1/chat/completions", big).await;
    assert_eq!(status, 413, "{v}");
    error_of(&v);
    // A long generation outlives the timeout: non-stream is 504, a stream ends with an error event
    // (the timeout leaves the stream's first token time to come on a loaded machine).
    let long = chat(SMOL, "Count to a thousand.", json!({"max_tokens": 2000, "ignore_eos": true}));
    let (status, v) = post(&url, "/v1/chat/completions", long.clone()).await;
    assert_eq!(status, 504, "{v}");
    assert_eq!(error_of(&v)["code"], "timeout");
    let mut stream = long;
    stream["stream"] = json!(true);
    let (status, _, body) = post_raw(&url, "/v1/chat/completions", stream).await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""code":"timeout""#), "{body}");
    assert!(!body.contains("[DONE]"));
}

/// Retrieval embeds with the server's embedding model for the key: a search's query and an
/// upload's chunks count against its tokens per minute like `/v1/embeddings` does.
#[tokio::test]
async fn tokens_embedded_for_search_and_uploads_are_charged() {
    let dir = std::env::temp_dir().join(format!("hearth-auth-rag-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let loc = hearth_rag::location::StoreLocation::Sqlite(dir.join("rag.sqlite"));
    let store = tokio::task::spawn_blocking(move || loc.open()).await.unwrap().unwrap();
    let ops = ApiKey { admin: true, ..key("ops", "sk-ops", None, None) };
    let keys = vec![key("gus", "sk-gus", None, Some(60)), key("hal", "sk-hal", None, Some(60)), ops];
    let auth = AuthConfig { keys, public_health: true, public_metrics: false, public_docs: true };
    let rag = hearth_server::services::retrieval::Rag::new(store, MINILM_Q8.into(), 1 << 20);
    let url = serve_state(AppState::new(shared(), Limits::default()).with_rag(rag).with_auth(auth)).await;
    let c = reqwest::Client::new();
    let words = "lighthouse keeper harbour tide ".repeat(40);
    for who in ["sk-gus", "sk-hal"] {
        let res = c.post(format!("{url}/collections")).bearer_auth(who).json(&json!({"name": "c"})).send().await;
        assert_eq!(res.unwrap().status(), 201);
    }
    let search = json!({"query": words, "mode": "vector"});
    let res = c.post(format!("{url}/collections/c/search")).bearer_auth("sk-gus").json(&search).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let again = c.post(format!("{url}/collections/c/search")).bearer_auth("sk-gus").json(&search).send().await.unwrap();
    assert_eq!(again.status(), 429, "the query's ~160 tokens were charged against 60 a minute");

    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(words.into_bytes()).file_name("notes.txt"));
    let res = c.post(format!("{url}/collections/c/documents")).bearer_auth("sk-hal").multipart(form).send().await;
    let accepted: serde_json::Value = res.unwrap().json().await.unwrap();
    let job = accepted["data"][0]["id"].as_str().expect("a job").to_string();
    let mut status = json!(null);
    for _ in 0..600 {
        // Polled by an admin key: hal's own budget is spent while the job runs.
        let res = c.get(format!("{url}/jobs/{job}")).bearer_auth("sk-ops").send().await.unwrap();
        status = res.json::<serde_json::Value>().await.unwrap()["status"].clone();
        if status == "done" || status == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "done");
    let after = c.post(format!("{url}/collections/c/search")).bearer_auth("sk-hal").json(&search).send().await.unwrap();
    assert_eq!(after.status(), 429, "the upload's embedded chunks were charged");
    let _ = std::fs::remove_dir_all(&dir);
}

// With keys configured, the unauthenticated /health listed loaded model ids and their traffic
// counters (issue 28): a probe without a key now learns only that the server is up.
#[tokio::test]
async fn probes_without_a_key_learn_only_that_the_server_is_up() {
    let url = with_keys(vec![key("alice", "sk-health-alice", None, None)], true).await;
    shared().get(SMOL).await.unwrap();
    let anonymous: serde_json::Value = call(&url, "GET", "/health", None).await.json().await.unwrap();
    assert_eq!(anonymous["status"], "ok");
    assert_eq!(anonymous["models"], json!([]), "{anonymous}");
    let ready: serde_json::Value = call(&url, "GET", "/health/ready", None).await.json().await.unwrap();
    assert!(ready.get("model").is_none(), "{ready}");
    let with_key: serde_json::Value = call(&url, "GET", "/health", Some("sk-health-alice")).await.json().await.unwrap();
    assert!(with_key["models"].as_array().unwrap().iter().any(|m| m["id"] == SMOL), "{with_key}");
    let bad = call(&url, "GET", "/health", Some("sk-wrong")).await;
    assert_eq!(bad.status(), 200, "a probe with a wrong key is still a probe");
}

// One key could take every admission permit and starve the others (issue 28).
#[tokio::test]
async fn one_key_holds_at_most_its_share_of_the_permits() {
    let limits = Limits { max_concurrent_requests: 4, key_share: 0.5, ..Default::default() };
    let keys = vec![key("alice", "sk-share-alice", None, None), key("bob", "sk-share-bob", None, None)];
    let auth = AuthConfig { keys, public_health: true, public_metrics: false, public_docs: true };
    let models =
        manager(hearth_engine::EngineSettings { ctx_size: 2048, parallel: 4, threads: 2, ..Default::default() });
    let url = serve_state(AppState::new(models, limits).with_auth(auth)).await;
    let hold = |who: &'static str| {
        let url = url.clone();
        async move {
            let body = json!({"model": SMOL, "prompt": "Once", "max_tokens": 1500, "ignore_eos": true, "stream": true});
            let c = reqwest::Client::new();
            c.post(format!("{url}/v1/completions")).bearer_auth(who).json(&body).send().await.unwrap()
        }
    };
    let first = hold("sk-share-alice").await;
    let second = hold("sk-share-alice").await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = hold("sk-share-alice").await;
    assert_eq!(third.status(), 429);
    let v: serde_json::Value = third.json().await.unwrap();
    assert_eq!(error_of(&v)["code"], "key_share_exceeded", "{v}");
    let c = reqwest::Client::new();
    let bob = c
        .post(format!("{url}/v1/completions"))
        .bearer_auth("sk-share-bob")
        .json(&json!({"model": SMOL, "prompt": "x", "max_tokens": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bob.status(), 200, "another key is still served");
    drop((first, second));
}
