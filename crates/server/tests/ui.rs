//! The browser UI's server side: the embedded page and assets (gzip, ETag, cache headers,
//! Content-Security-Policy), `GET /` for browsers and for other clients, `--no-ui`, and the
//! conversations API it keeps history in, with ownership by API key.

mod common;

use common::*;
use hearth_server::http::auth::{hash_key, ApiKey, AuthConfig};
use hearth_server::{AppState, Limits};
use serde_json::{json, Value};

async fn serve_state(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hearth_server::app(state)).await });
    url
}

fn store() -> std::sync::Arc<dyn hearth_rag::conversation::ConversationStore> {
    let dir = std::env::temp_dir().join(format!("hearth-ui-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    std::sync::Arc::new(hearth_rag::sqlite::SqliteStore::open(&dir.join("rag.sqlite")).unwrap())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn keyed(state: AppState) -> AppState {
    let key = |n: &str| ApiKey { name: n.into(), sha256: hash_key(&format!("sk-{n}")), ..ApiKey::default() };
    state.with_auth(AuthConfig {
        keys: vec![key("alice"), key("bob")],
        public_health: true,
        public_metrics: false,
        public_docs: true,
    })
}

async fn send(c: &reqwest::Client, method: &str, url: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut r = c.request(method.parse().unwrap(), url);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_page_is_served_to_browsers_with_a_strict_policy() {
    let url = serve_state(AppState::new(shared(), Limits::default())).await;
    let c = reqwest::Client::new();
    let html = "text/html,application/xhtml+xml,*/*;q=0.8";
    let page = c.get(format!("{url}/")).header("accept", html).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["vary"], "accept, accept-encoding");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"));
    let etag = h["etag"].to_str().unwrap().to_string();
    let body = page.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text).unwrap();
    assert!(
        text.contains("<script type=\"module\"") && !text.contains("http://") && !text.contains("https://"),
        "{text}"
    );
    let again = c
        .get(format!("{url}/"))
        .header("accept", html)
        .header("accept-encoding", "gzip")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // Every script and stylesheet the page names is served, immutable, with its type.
    let assets: Vec<&str> = text.split('"').filter(|s| s.starts_with("/assets/")).collect();
    assert!(assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css")), "{assets:?}");
    for a in assets {
        let res = c.get(format!("{url}{a}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{a}");
        assert!(res.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        assert!(res.headers().get("content-encoding").is_none(), "raw without accept-encoding");
    }
    assert_eq!(c.get(format!("{url}/assets/nope.js")).send().await.unwrap().status(), 404);
    // Other clients get a line of text, as from Ollama.
    let plain = c.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(plain.text().await.unwrap(), "Hearth is running\n");
}

#[tokio::test]
async fn no_ui_serves_only_the_running_line() {
    let url = serve_state(AppState::new(shared(), Limits::default()).with_ui(false)).await;
    let c = reqwest::Client::new();
    let res = c.get(format!("{url}/")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "Hearth is running\n");
    let a = hearth_server::ui::ASSETS.iter().find(|a| a.path.starts_with("/assets/")).unwrap().path;
    assert_eq!(c.get(format!("{url}{a}")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn the_page_needs_no_key_but_conversations_do() {
    let url = serve_state(keyed(AppState::new(shared(), Limits::default()).with_conversations(store()))).await;
    let c = reqwest::Client::new();
    let res = c.get(format!("{url}/")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let (s, body) = send(&c, "GET", &format!("{url}/api/v1/conversations"), None, None).await;
    assert_eq!((s, error_of(&body)["code"].as_str()), (401, Some("missing_api_key")));
}

#[tokio::test]
async fn conversations_belong_to_the_key_that_made_them() {
    let url = serve_state(keyed(AppState::new(shared(), Limits::default()).with_conversations(store()))).await;
    let c = reqwest::Client::new();
    let base = format!("{url}/api/v1/conversations");
    let msgs = json!([{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris.", "ttft_ms": 120}]);
    let (s, conv) = send(
        &c,
        "POST",
        &base,
        Some("sk-alice"),
        Some(json!({"title": "Geo", "messages": msgs, "settings": {"temperature": 0.3}})),
    )
    .await;
    assert_eq!(s, 201, "{conv}");
    assert_eq!((conv["object"].as_str(), conv["version"].as_u64()), (Some("conversation"), Some(1)));
    let id = conv["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("conv-"));
    let one = format!("{base}/{id}");
    let (s, got) = send(&c, "GET", &one, Some("sk-alice"), None).await;
    assert_eq!((s, &got["messages"], &got["settings"]["temperature"]), (200, &msgs, &json!(0.3)));
    // Bob: not in his list, 404 on every route with the id, and nothing changed.
    let (_, list) = send(&c, "GET", &base, Some("sk-bob"), None).await;
    assert_eq!(list["data"], json!([]));
    for (method, body) in [("GET", None), ("PATCH", Some(json!({"title": "mine"}))), ("DELETE", None)] {
        let (s, e) = send(&c, method, &one, Some("sk-bob"), body).await;
        assert_eq!((s, error_of(&e)["code"].as_str()), (404, Some("conversation_not_found")), "{method}");
        assert!(!e.to_string().contains("France"), "no content leaks");
    }
    let (_, list) = send(&c, "GET", &format!("{base}?q=FRANCE"), Some("sk-alice"), None).await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(list["data"][0]["message_count"], 2);
    // Versions: a stale change is a 409, a current one applies.
    let (s, up) = send(&c, "PATCH", &one, Some("sk-alice"), Some(json!({"title": "Renamed", "version": 1}))).await;
    assert_eq!((s, up["version"].as_u64(), up["title"].as_str()), (200, Some(2), Some("Renamed")));
    let (s, e) = send(&c, "PATCH", &one, Some("sk-alice"), Some(json!({"title": "Old tab", "version": 1}))).await;
    assert_eq!((s, error_of(&e)["code"].as_str()), (409, Some("conversation_conflict")));
    // Bad input is a 400 in OpenAI's shape.
    for bad in [
        json!({"messages": [{"role": "user"}]}),
        json!({"title": 5}),
        json!({"nope": 1}),
        json!({"title": "x".repeat(201)}),
    ] {
        let (s, e) = send(&c, "POST", &base, Some("sk-alice"), Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad} -> {e}");
        assert!(error_of(&e)["message"].is_string());
    }
    let (s, d) = send(&c, "DELETE", &one, Some("sk-alice"), None).await;
    assert_eq!((s, d["deleted"].as_bool()), (200, Some(true)));
    assert_eq!(send(&c, "GET", &one, Some("sk-alice"), None).await.0, 404);
}

#[tokio::test]
async fn without_a_store_conversations_are_a_clear_404() {
    let url = serve_state(AppState::new(shared(), Limits::default())).await;
    let (s, e) = send(&reqwest::Client::new(), "GET", &format!("{url}/api/v1/conversations"), None, None).await;
    assert_eq!((s, error_of(&e)["code"].as_str()), (404, Some("conversations_disabled")));
}
