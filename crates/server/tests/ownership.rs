//! Ownership across API keys, driven by the route table: every route that names an object is
//! tried with another key's id (404, and the object is still there afterwards), every list is
//! read by another key (none of the first key's objects in it), an admin key sees and reaches
//! them all, and a key scoped to models sees and uses only those. A new route with an id fails
//! here until the test knows how to fill it in.

mod common;

use common::*;
use hearth_rag::location::StoreLocation;
use hearth_server::http::auth::{hash_key, ApiKey, AuthConfig};
use hearth_server::services::retrieval::Rag;
use hearth_server::{Access, AppState, Limits, ROUTES};
use serde_json::{json, Value};
use std::time::Duration;

fn key(name: &str, admin: bool, models: Option<&[&str]>) -> ApiKey {
    ApiKey {
        name: name.into(),
        sha256: hash_key(&format!("sk-{name}")),
        admin,
        models: models.map(|m| m.iter().map(|s| s.to_string()).collect()),
        ..ApiKey::default()
    }
}

async fn serve(tag: &str) -> String {
    let dir = std::env::temp_dir().join(format!("hearth-owners-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let loc = StoreLocation::Sqlite(dir.join("rag.sqlite"));
    let store = tokio::task::spawn_blocking(move || loc.open()).await.unwrap().unwrap();
    let keys = vec![key("alice", false, None), key("bob", false, None), key("ops", true, None)];
    let keys = [keys, vec![key("carol", false, Some(&[GEMMA])), key("dave", true, Some(&[GEMMA]))]].concat();
    let auth = AuthConfig { keys, public_health: true, public_metrics: false, public_docs: true };
    let state =
        AppState::new(shared(), Limits::default()).with_rag(Rag::new(store, MINILM_Q8.into(), 1 << 20)).with_auth(auth);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hearth_server::app(state)).await });
    url
}

/// A request as `who` (`sk-WHO`); multipart for upload routes.
async fn call(url: &str, who: &str, method: &str, path: &str, body: Value) -> (u16, String) {
    let c = reqwest::Client::new();
    let full = format!("{url}{path}");
    let req = match method {
        "GET" => c.get(full),
        "DELETE" => c.delete(full),
        "PATCH" => c.patch(full).json(&body),
        _ if path.ends_with("/documents") || path.ends_with("/upload") => {
            let part = reqwest::multipart::Part::bytes(b"# Note\n\nA line.".to_vec()).file_name("n.md");
            c.post(full).multipart(reqwest::multipart::Form::new().part("file", part).text("prompt", "hi"))
        }
        _ => c.post(full).json(&body),
    };
    let res = req.bearer_auth(format!("sk-{who}")).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn json_of(url: &str, who: &str, method: &str, path: &str, body: Value) -> Value {
    let (status, text) = call(url, who, method, path, body).await;
    assert!(status < 300, "{method} {path} as {who}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// What alice owns, by the names she uses.
struct Owned {
    collection: String,
    document: i64,
    job: String,
    session: String,
    conversation: String,
}

async fn alice_creates(url: &str) -> Owned {
    let collection = "alice-only".to_string();
    json_of(url, "alice", "POST", "/collections", json!({ "name": collection })).await;
    let jobs = json_of(url, "alice", "POST", &format!("/collections/{collection}/documents"), Value::Null).await;
    let job = jobs["data"][0]["id"].as_str().unwrap().to_string();
    let mut state = Value::Null;
    for _ in 0..600 {
        state = json_of(url, "alice", "GET", &format!("/jobs/{job}"), Value::Null).await;
        if state["status"] == "done" || state["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state["status"], "done", "{state}");
    let document = state["result"]["document"]["id"].as_i64().unwrap_or_else(|| panic!("{state}"));
    let session = "alice-session-7f3".to_string();
    let generated =
        json!({ "prompt": "Say hi.", "session_id": session, "max_tokens": 2, "temperature": 0, "model": SMOL });
    json_of(url, "alice", "POST", "/api/v1/generate", generated).await;
    let conv = json_of(url, "alice", "POST", "/api/v1/conversations", json!({ "title": "alice-secret-title" })).await;
    let conversation = conv["id"].as_str().unwrap().to_string();
    Owned { collection, document, job, session, conversation }
}

/// The path of a route with alice's objects in it, her names qualified by `prefix` (an admin
/// names them `alice/NAME`); `None` for a route whose id is not an owned object.
fn fill(path: &str, o: &Owned, prefix: &str) -> Option<String> {
    let enc = |s: &str| format!("{prefix}{s}").replace('/', "%2F");
    let filled = match path {
        "/collections/{name}" | "/collections/{name}/documents" | "/collections/{name}/search" => {
            path.replace("{name}", &enc(&o.collection))
        }
        "/collections/{name}/documents/{id}" => {
            path.replace("{name}", &enc(&o.collection)).replace("{id}", &o.document.to_string())
        }
        "/jobs/{id}" => path.replace("{id}", &o.job),
        "/api/v1/sessions/{id}" => path.replace("{id}", &enc(&o.session)),
        "/api/v1/conversations/{id}" => path.replace("{id}", &enc(&o.conversation)),
        // Models are not owned: the scope test below covers them.
        "/v1/models/{*id}" => return None,
        other => panic!("{other} names an object: add it to the ownership test"),
    };
    Some(filled)
}

fn body_for(path: &str) -> Value {
    if path.ends_with("/search") {
        json!({ "query": "line" })
    } else {
        json!({ "title": "taken over" })
    }
}

#[tokio::test]
async fn another_keys_objects_are_not_found_and_never_listed() {
    let url = serve("objects").await;
    let o = alice_creates(&url).await;
    let owned: Vec<_> = ROUTES
        .iter()
        .filter(|r| r.access == Access::Key && r.path.contains('{'))
        .filter_map(|r| Some((r, fill(r.path, &o, "")?)))
        .collect();
    assert!(owned.len() >= 12, "{} routes with ids", owned.len());
    for (r, path) in &owned {
        let (status, text) = call(&url, "bob", r.method, path, body_for(path)).await;
        assert_eq!(status, 404, "{} {path} as bob: {text}", r.method);
        assert!(!text.contains("alice-secret") && !text.contains("A line."), "{text}");
    }
    // Nothing bob tried changed alice's objects.
    for (r, path) in owned.iter().filter(|(r, _)| r.method == "GET") {
        let (status, text) = call(&url, "alice", "GET", path, Value::Null).await;
        assert_eq!(status, 200, "{} {path} as alice: {text}", r.method);
    }
    // No list bob reads names alice's objects.
    let lists = ROUTES.iter().filter(|r| r.access == Access::Key && r.method == "GET" && !r.path.contains('{'));
    for r in lists {
        let (status, text) = call(&url, "bob", "GET", r.path, Value::Null).await;
        assert!(status < 500, "{} {status}", r.path);
        for secret in [&o.collection, &o.session, &o.conversation, &o.job, &"alice-secret-title".to_string()] {
            assert!(!text.contains(secret.as_str()), "{} shows bob {secret}: {text}", r.path);
        }
    }
    // Ids in bodies are the caller's too: alice's collection is not found for bob's chat or
    // generation, and her session's id names a new session of bob's, not hers.
    let ask = chat(SMOL, "hi", json!({ "max_tokens": 1, "rag": { "collection": o.collection } }));
    assert_eq!(call(&url, "bob", "POST", "/v1/chat/completions", ask).await.0, 404);
    let generated = json!({ "prompt": "hi", "collection": o.collection, "max_tokens": 1, "model": SMOL });
    assert_eq!(call(&url, "bob", "POST", "/api/v1/generate", generated).await.0, 404);
    let generated = json!({ "prompt": "bob-was-here", "session_id": o.session, "max_tokens": 1, "model": SMOL });
    let (status, text) = call(&url, "bob", "POST", "/api/v1/generate", generated).await;
    assert_eq!(status, 200, "{text}");
    let session = call(&url, "alice", "GET", &format!("/api/v1/sessions/{}", o.session), Value::Null).await.1;
    assert!(!session.contains("bob-was-here"), "bob's turn went into alice's session: {session}");
    // Names are per key: bob may have a collection of the same name, empty and his own.
    json_of(&url, "bob", "POST", "/collections", json!({ "name": o.collection })).await;
    let path = format!("/collections/{}", o.collection);
    assert_eq!(json_of(&url, "bob", "GET", &path, Value::Null).await["documents"], 0);
    assert_eq!(json_of(&url, "alice", "GET", &path, Value::Null).await["documents"], 1);
    // The admin key sees alice's objects in lists and reaches each by `alice/NAME`.
    let listed = json_of(&url, "ops", "GET", "/collections", Value::Null).await;
    assert!(listed.to_string().contains("alice/alice-only"), "{listed}");
    let listed = json_of(&url, "ops", "GET", "/api/v1/sessions", Value::Null).await;
    assert!(listed.to_string().contains("alice/alice-session-7f3"), "{listed}");
    let listed = json_of(&url, "ops", "GET", "/api/v1/conversations", Value::Null).await;
    assert!(listed.to_string().contains(&format!("alice/{}", o.conversation)), "{listed}");
    for (r, path) in owned.iter().filter(|(r, _)| r.method == "GET") {
        let admin_path = fill(r.path, &o, "alice/").unwrap();
        let (status, text) = call(&url, "ops", "GET", &admin_path, Value::Null).await;
        assert_eq!(status, 200, "GET {admin_path} as the admin (alice's {path}): {text}");
    }
    // What an admin creates is its own (bare names), and not alice's.
    json_of(&url, "ops", "POST", "/collections", json!({ "name": "shared-docs" })).await;
    let (status, _) = call(&url, "alice", "GET", "/collections/shared-docs", Value::Null).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_key_scoped_to_models_sees_and_uses_only_those() {
    let url = serve("scopes").await;
    let listed = json_of(&url, "carol", "GET", "/v1/models", Value::Null).await;
    let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![GEMMA]);
    let tags = json_of(&url, "carol", "GET", "/api/tags", Value::Null).await;
    assert!(!tags.to_string().contains("SmolLM2"), "{tags}");
    for (method, path, body) in [
        ("POST", "/v1/chat/completions", chat(SMOL, "hi", json!({ "max_tokens": 1 }))),
        ("POST", "/v1/completions", json!({ "model": SMOL, "prompt": "hi", "max_tokens": 1 })),
        ("POST", "/api/chat", json!({ "model": SMOL, "messages": [{ "role": "user", "content": "hi" }] })),
        ("POST", "/tokenize", json!({ "model": SMOL, "content": "hi" })),
        ("POST", "/v1/embeddings", json!({ "model": MINILM_Q8, "input": "hi" })),
        ("GET", "/v1/models/smollm2", Value::Null),
    ] {
        let (status, text) = call(&url, "carol", method, path, body).await;
        assert_eq!(status, 404, "{path} outside carol's scope: {text}");
    }
    // An empty model is the first of hers, not the server's default outside her scope.
    let done = json_of(&url, "carol", "POST", "/v1/chat/completions", chat("", "hi", json!({ "max_tokens": 1 }))).await;
    assert_eq!(done["model"], GEMMA);
    // Keys without a scope use every model.
    let done = json_of(&url, "bob", "POST", "/v1/chat/completions", chat(SMOL, "hi", json!({ "max_tokens": 1 }))).await;
    assert_eq!(done["model"], SMOL);
}

/// Only admin keys unload models: another key's `keep_alive: 0` (Ollama's unload) is 403, and
/// on a request it keeps the server's default, so no key can evict a model others use.
#[tokio::test]
async fn only_admin_keys_unload_models() {
    let url = serve("unload").await;
    for path in ["/api/generate", "/api/chat"] {
        let (status, text) = call(&url, "bob", "POST", path, json!({ "model": SMOL, "keep_alive": 0 })).await;
        assert_eq!(status, 403, "{path}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["error"].as_str().is_some_and(|e| e.contains("admin")), "Ollama's error shape: {text}");
    }
    let ask = json!({ "model": SMOL, "stream": false, "keep_alive": 0, "options": { "num_predict": 1 },
                      "messages": [{ "role": "user", "content": "hi" }] });
    assert_eq!(call(&url, "bob", "POST", "/api/chat", ask.clone()).await.0, 200);
    let ask = chat(SMOL, "hi", json!({ "max_tokens": 1, "keep_alive": "1ms" }));
    assert_eq!(call(&url, "bob", "POST", "/v1/chat/completions", ask).await.0, 200);
    for _ in 0..30 {
        assert!(!shared().unload_expired().await.contains(&SMOL.to_string()), "bob's keep_alive unloaded it");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// An admin key limited with `models=` could delete and pull models outside its scope (issue 28).
#[tokio::test]
async fn a_key_limited_to_models_cannot_delete_pull_or_unload_others() {
    let url = serve("scope").await;
    let c = reqwest::Client::new();
    let deleted = c
        .delete(format!("{url}/api/delete"))
        .bearer_auth("sk-dave")
        .json(&json!({"model": SMOL}))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 404, "a model outside the scope is not found to it");
    assert!(models_dir().join(format!("{SMOL}.gguf")).is_file(), "the file is still there");
    for path in ["/api/pull", "/models/pull"] {
        let (status, body) = call(&url, "dave", "POST", path, json!({ "model": "someone/some-model" })).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("models="), "{body}");
    }
    let (status, _) = call(&url, "dave", "POST", "/models/unload", json!({ "model": SMOL })).await;
    assert_eq!(status, 404);
    let (status, _) = call(&url, "dave", "POST", "/models/unload", json!({ "model": GEMMA })).await;
    assert!(status < 300 || status == 409, "its own model: {status}");
}

// No key could be kept from filling the store for everyone (issue 28): quotas, per key.
#[tokio::test]
async fn a_key_over_its_quotas_gets_403_and_keeps_what_it_has() {
    let dir = std::env::temp_dir().join(format!("hearth-quota-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let loc = StoreLocation::Sqlite(dir.join("rag.sqlite"));
    let store = tokio::task::spawn_blocking(move || loc.open()).await.unwrap().unwrap();
    let quotas = hearth_server::http::auth::Quotas {
        collections: Some(1),
        documents: Some(2),
        bytes: Some(1 << 20),
        conversations: Some(1),
        sessions: Some(1),
    };
    let quinn = ApiKey { quotas, ..key("quinn", false, None) };
    let auth = AuthConfig {
        keys: vec![quinn, key("rita", false, None)],
        public_health: true,
        public_metrics: false,
        public_docs: true,
    };
    let state =
        AppState::new(shared(), Limits::default()).with_rag(Rag::new(store, MINILM_Q8.into(), 1 << 20)).with_auth(auth);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hearth_server::app(state)).await });
    let quota = |status: u16, body: &str| status == 403 && body.contains("quota_exceeded");

    assert_eq!(call(&url, "quinn", "POST", "/collections", json!({"name": "a"})).await.0, 201);
    let (s, b) = call(&url, "quinn", "POST", "/collections", json!({"name": "b"})).await;
    assert!(quota(s, &b), "{s} {b}");
    assert_eq!(call(&url, "rita", "POST", "/collections", json!({"name": "b"})).await.0, 201, "others are not limited");
    for name in ["n.md", "o.md"] {
        let part = reqwest::multipart::Part::bytes(format!("# {name}\n\nA line.").into_bytes()).file_name(name);
        let res = reqwest::Client::new()
            .post(format!("{url}/collections/a/documents"))
            .bearer_auth("sk-quinn")
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        let v: Value = res.json().await.unwrap();
        wait_job(&url, "quinn", v["data"][0]["id"].as_str().unwrap()).await;
    }
    let (s, b) = call(&url, "quinn", "POST", "/collections/a/documents", Value::Null).await;
    assert!(quota(s, &b), "{s} {b}");
    let c: Value = json_of(&url, "quinn", "GET", "/collections/a", Value::Null).await;
    assert_eq!(c["documents"], 2, "what was stored stays");

    assert_eq!(call(&url, "quinn", "POST", "/api/v1/conversations", json!({"title": "one"})).await.0, 201);
    let (s, b) = call(&url, "quinn", "POST", "/api/v1/conversations", json!({"title": "two"})).await;
    assert!(quota(s, &b), "{s} {b}");

    let ask = |session: &str| json!({"prompt": "Hi", "model": SMOL, "max_tokens": 2, "session_id": session});
    assert_eq!(call(&url, "quinn", "POST", "/api/v1/generate", ask("s1")).await.0, 200);
    let (s, b) = call(&url, "quinn", "POST", "/api/v1/generate", ask("s2")).await;
    assert!(quota(s, &b), "{s} {b}");
    assert_eq!(call(&url, "quinn", "POST", "/api/v1/generate", ask("s1")).await.0, 200, "its own session goes on");
    std::fs::remove_dir_all(&dir).ok();
}

async fn wait_job(url: &str, who: &str, id: &str) {
    for _ in 0..600 {
        let j = json_of(url, who, "GET", &format!("/jobs/{id}"), Value::Null).await;
        if j["status"] == "done" || j["status"] == "failed" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish");
}
