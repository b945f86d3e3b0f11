//! Retrieval end to end with the real embedding model: documents generated here (a PDF, a
//! DOCX, Markdown) carry facts that exist nowhere else; search must find the right chunk first,
//! with its page or section; re-uploads dedupe or replace; bad files are 4xx; the store
//! survives a restart.

mod common;

use common::*;
use hearth_rag::fixtures;
use hearth_rag::location::StoreLocation;
use hearth_server::services::retrieval::Rag;
use hearth_server::{AppState, Limits};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn store_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-rag-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("rag.sqlite")
}

async fn serve_rag(path: &Path, max_upload: usize) -> String {
    serve_store(StoreLocation::Sqlite(path.to_path_buf()), max_upload).await
}

async fn serve_store(loc: StoreLocation, max_upload: usize) -> String {
    serve_limited(loc, max_upload, Limits::default()).await
}

async fn serve_limited(loc: StoreLocation, max_upload: usize, limits: Limits) -> String {
    let store = tokio::task::spawn_blocking(move || loc.open()).await.unwrap().unwrap();
    let rag = Rag::new(store, MINILM_Q8.into(), max_upload);
    let state = AppState::new(shared(), limits).with_rag(rag);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hearth_server::app(state)).await });
    url
}

async fn upload(url: &str, c: &str, files: Vec<(&str, Vec<u8>)>, meta: Option<Value>) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new();
    for (name, bytes) in files {
        form = form.part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()));
    }
    if let Some(m) = meta {
        form = form.text("metadata", m.to_string());
    }
    let res =
        reqwest::Client::new().post(format!("{url}/collections/{c}/documents")).multipart(form).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// Waits for every job of an upload answer; returns their final states.
async fn finish(url: &str, accepted: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for job in accepted["data"].as_array().expect("jobs") {
        let id = job["id"].as_str().unwrap();
        let mut state = Value::Null;
        for _ in 0..600 {
            state = reqwest::get(format!("{url}/jobs/{id}")).await.unwrap().json().await.unwrap();
            if state["status"] == "done" || state["status"] == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(state["status"], "done", "{state}");
        out.push(state);
    }
    out
}

async fn search(url: &str, c: &str, q: &str, mode: &str) -> Vec<Value> {
    let (status, v) =
        post(url, &format!("/collections/{c}/search"), json!({"query": q, "mode": mode, "top_k": 3})).await;
    assert_eq!(status, 200, "{v}");
    v["data"].as_array().unwrap().clone()
}

fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let pdf = fixtures::pdf(&[
        "Harbour operations manual.\nShips dock at the northern pier.",
        "The vault access phrase for the lighthouse is QUILLFEATHER-218.\nIt changes every winter.",
    ]);
    let docx = fixtures::docx(
        "Orchard log",
        &[
            ("Heading1", "Pear trees"),
            ("", "The orchard's oldest pear tree was planted by Ingrid Vaskelund in 1911."),
            ("Heading1", "Apples"),
            ("", "Apples are picked in October."),
        ],
    );
    let md = b"# Kitchen\n\nThe secret sauce uses smoked paprika and tamarind.\n\n## Cleaning\n\nWipe the counters with vinegar.\n".to_vec();
    vec![("harbour.pdf", pdf), ("orchard.docx", docx), ("kitchen.md", md)]
}

#[tokio::test]
async fn ingest_search_dedupe_replace_and_restart() {
    let path = store_path("main");
    end_to_end(StoreLocation::Sqlite(path.clone())).await;
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

/// The same, over PostgreSQL; the "restarted" server is a second replica on the same database.
#[tokio::test]
async fn ingest_search_dedupe_replace_and_restart_on_postgres() {
    let db = tokio::task::spawn_blocking(|| fixtures::postgres_database("server"));
    let Some(url) = db.await.unwrap() else { return };
    end_to_end(StoreLocation::Postgres(url)).await;
}

async fn end_to_end(loc: StoreLocation) {
    let url = serve_store(loc.clone(), 1 << 20).await;
    let (status, c) = post(&url, "/collections", json!({"name": "facts"})).await;
    assert_eq!(status, 201, "{c}");
    assert_eq!((c["dim"].as_u64(), c["model"].as_str()), (Some(384), Some(MINILM_Q8)));
    assert_eq!(post(&url, "/collections", json!({"name": "facts"})).await.0, 409);

    let (status, accepted) = upload(&url, "facts", corpus(), Some(json!({"source": "test"}))).await;
    assert_eq!(status, 202, "{accepted}");
    let done = finish(&url, &accepted).await;
    assert!(done.iter().all(|j| j["result"]["outcome"] == "created" && j["chunks_total"].as_u64() > Some(0)));

    for mode in ["vector", "hybrid"] {
        let hits = search(&url, "facts", "What is the vault access phrase of the lighthouse?", mode).await;
        assert_eq!(hits[0]["document"], "harbour.pdf", "{mode}: {hits:?}");
        assert_eq!(hits[0]["page"], 2);
        assert!(hits[0]["text"].as_str().unwrap().contains("QUILLFEATHER-218"));
        let hits = search(&url, "facts", "Who planted the oldest pear tree?", mode).await;
        assert_eq!(hits[0]["document"], "orchard.docx", "{mode}: {hits:?}");
        assert_eq!(hits[0]["section"], "Pear trees");
    }
    let hits = search(&url, "facts", "tamarind", "keyword").await;
    assert_eq!((hits[0]["document"].as_str(), hits[0]["section"].as_str()), (Some("kitchen.md"), Some("Kitchen")));
    let (_, v) = post(&url, "/collections/facts/search", json!({"query": "pear", "filter": {"source": "other"}})).await;
    assert!(v["data"].as_array().unwrap().is_empty(), "metadata filter");

    // Grounded answers cite the retrieved sources, by number.
    let ask = json!({"prompt": "What is the vault access phrase of the lighthouse?", "collection": "facts", "model": SMOL, "max_tokens": 40, "temperature": 0});
    let (status, v) = post(&url, "/api/v1/generate", ask).await;
    assert_eq!(status, 200, "{v}");
    assert!(!v["answer"].as_str().unwrap().is_empty());
    let cites = v["citations"].as_array().unwrap();
    assert!(!cites.is_empty() && cites.len() <= 4, "{v}");
    assert_eq!(
        (cites[0]["n"].as_u64(), cites[0]["document"].as_str(), cites[0]["page"].as_u64()),
        (Some(1), Some("harbour.pdf"), Some(2))
    );
    assert!(cites[0]["chunk_id"].as_i64().is_some());
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 40, "the sources are in the prompt");
    let chat_rag = chat(
        SMOL,
        "Who planted the oldest pear tree?",
        json!({"max_tokens": 30, "temperature": 0, "rag": {"collection": "facts", "top_k": 2}}),
    );
    let (status, v) = post(&url, "/v1/chat/completions", chat_rag.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["citations"][0]["document"], "orchard.docx");
    let mut streamed = chat_rag;
    streamed["stream"] = json!(true);
    let (_, _, body) = post_raw(&url, "/v1/chat/completions", streamed).await;
    let first: Value = serde_json::from_str(body.lines().next().unwrap().trim_start_matches("data: ")).unwrap();
    assert_eq!(first["citations"][0]["document"], "orchard.docx", "citations ride on the first chunk");
    let (status, _) = post(&url, "/api/v1/generate", json!({"prompt": "x", "collection": "nope", "model": SMOL})).await;
    assert_eq!(status, 404);

    // Session memory: the second turn carries the first; turns are stored, listed, deleted.
    let turn = |p: &str| json!({"prompt": p, "session_id": "s-1", "model": SMOL, "max_tokens": 12, "temperature": 0});
    let (status, first) = post(&url, "/api/v1/generate", turn("My name is Oriel. Remember it.")).await;
    assert_eq!(status, 200, "{first}");
    let (_, second) = post(&url, "/api/v1/generate", turn("What is my name?")).await;
    assert!(second["usage"]["prompt_tokens"].as_u64() > first["usage"]["prompt_tokens"].as_u64(), "history was sent");
    let s: Value = reqwest::get(format!("{url}/api/v1/sessions/s-1")).await.unwrap().json().await.unwrap();
    let roles: Vec<&str> = s["turns"].as_array().unwrap().iter().map(|t| t["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(s["turns"][0]["content"], "My name is Oriel. Remember it.");
    let list: Value = reqwest::get(format!("{url}/api/v1/sessions")).await.unwrap().json().await.unwrap();
    assert!(list["data"].as_array().unwrap().iter().any(|x| x["id"] == "s-1" && x["turns"] == 4));
    let mut streamed = turn("And where do I live?");
    streamed["stream"] = json!(true);
    let (status, _, body) = post_raw(&url, "/api/v1/generate", streamed).await;
    assert_eq!(status, 200);
    assert!(body.contains("[DONE]"));
    let mut turns = 0;
    for _ in 0..100 {
        let s: Value = reqwest::get(format!("{url}/api/v1/sessions/s-1")).await.unwrap().json().await.unwrap();
        turns = s["turns"].as_array().unwrap().len();
        if turns == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(turns, 6, "a streamed turn is stored when the stream ends");
    assert_eq!(
        post(&url, "/api/v1/generate", json!({"prompt": "x", "session_id": "bad id", "model": SMOL})).await.0,
        400
    );
    let del = reqwest::Client::new().delete(format!("{url}/api/v1/sessions/s-1")).send().await.unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(reqwest::get(format!("{url}/api/v1/sessions/s-1")).await.unwrap().status(), 404);

    // The same file again: nothing new. A changed file under the same name: replaced.
    let (_, again) = upload(&url, "facts", vec![corpus().remove(2)], None).await;
    assert_eq!(finish(&url, &again).await[0]["result"]["outcome"], "unchanged");
    let changed = b"# Kitchen\n\nThe secret sauce now uses saffron and yuzu.\n".to_vec();
    let (_, replaced) = upload(&url, "facts", vec![("kitchen.md", changed)], None).await;
    assert_eq!(finish(&url, &replaced).await[0]["result"]["outcome"], "replaced");
    assert!(search(&url, "facts", "tamarind", "keyword").await.is_empty(), "old chunks are gone");
    let c: Value = reqwest::get(format!("{url}/collections/facts")).await.unwrap().json().await.unwrap();
    assert_eq!(c["documents"], 3);

    // Restart: a new server over the same store finds the same chunk, and knows the jobs.
    let url2 = serve_store(loc, 1 << 20).await;
    let id = accepted["data"][0]["id"].as_str().unwrap();
    let job: Value = reqwest::get(format!("{url2}/jobs/{id}")).await.unwrap().json().await.unwrap();
    assert_eq!(
        (job["status"].as_str(), job["chunks_total"].as_u64()),
        (Some("done"), done[0]["chunks_total"].as_u64())
    );
    let hits = search(&url2, "facts", "What is the vault access phrase of the lighthouse?", "hybrid").await;
    assert_eq!((hits[0]["document"].as_str(), hits[0]["page"].as_u64()), (Some("harbour.pdf"), Some(2)));

    let docs: Value = reqwest::get(format!("{url2}/collections/facts/documents")).await.unwrap().json().await.unwrap();
    let pdf_id = docs["data"].as_array().unwrap().iter().find(|d| d["name"] == "harbour.pdf").unwrap()["id"].clone();
    let del =
        reqwest::Client::new().delete(format!("{url2}/collections/facts/documents/{pdf_id}")).send().await.unwrap();
    assert_eq!(del.status(), 200);
    assert!(search(&url2, "facts", "QUILLFEATHER", "keyword").await.is_empty());
    let del = reqwest::Client::new().delete(format!("{url2}/collections/facts")).send().await.unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(reqwest::get(format!("{url2}/collections/facts")).await.unwrap().status(), 404);
}

#[tokio::test]
async fn bad_uploads_are_clear_4xx() {
    let path = store_path("bad");
    let url = serve_rag(&path, 200_000).await;
    assert_eq!(post(&url, "/collections", json!({"name": "c"})).await.0, 201);
    let pdf = fixtures::pdf(&["hello"]);
    let bomb = fixtures::zip_of(&[("word/document.xml", &vec![b'a'; 80 << 20])]);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("broken.pdf", pdf[..pdf.len() / 2].to_vec(), 400, "invalid_document"),
        ("tool.exe", b"MZ\x90\x00binary".to_vec(), 415, "unsupported_document_type"),
        ("bomb.docx", bomb, 413, "document_too_large"),
        ("big.txt", vec![b'x'; 300_000], 413, "file_too_large"),
        ("empty.md", b"   \n\n".to_vec(), 400, "empty_document"),
        ("latin1.txt", vec![0xe9, 0x74, 0xe9], 400, "invalid_document"),
    ];
    for (name, bytes, want, code) in cases {
        let (status, v) = upload(&url, "c", vec![(name, bytes)], None).await;
        assert_eq!(status, want, "{name}: {v}");
        assert_eq!(error_of(&v)["code"], code, "{name}");
    }
    let (status, _) = upload(&url, "nope", vec![("a.txt", b"hi".to_vec())], None).await;
    assert_eq!(status, 404);
    let (status, v) = post(&url, "/collections/c/search", json!({"query": "x", "top_k": 0})).await;
    assert_eq!((status, error_of(&v)["param"].clone()), (400, json!("top_k")));
    assert_eq!(post(&url, "/collections", json!({"name": "../etc"})).await.0, 400);
    assert_eq!(reqwest::get(format!("{url}/jobs/nope")).await.unwrap().status(), 404);
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

/// The sending end of a hand-fed body.
type Feed = futures::channel::mpsc::UnboundedSender<Result<Vec<u8>, std::io::Error>>;

/// An upload whose body the test feeds by hand: the multipart head of one file is sent at
/// once, the rest with the returned sender (dropping it cuts the body).
fn stalled_upload(url: &str, path: &str) -> (Feed, tokio::task::JoinHandle<(u16, Value)>) {
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let head = "--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
                Content-Type: text/plain\r\n\r\n";
    tx.unbounded_send(Ok(head.as_bytes().to_vec())).unwrap();
    let req = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("content-type", "multipart/form-data; boundary=XB")
        .body(reqwest::Body::wrap_stream(rx));
    let answer = tokio::spawn(async move {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    });
    (tx, answer)
}

#[tokio::test]
async fn uploads_are_refused_as_they_arrive_and_capped() {
    let path = store_path("admission");
    let url = serve_rag(&path, 200_000).await;
    assert_eq!(post(&url, "/collections", json!({"name": "c"})).await.0, 201);
    // Past the limit, the answer comes while the client is still sending: nothing waits for
    // (or buffers) the rest of the body.
    let (tx, answer) = stalled_upload(&url, "/collections/c/documents");
    tx.unbounded_send(Ok(vec![b'x'; 250_000])).unwrap();
    let (status, v) = tokio::time::timeout(Duration::from_secs(60), answer).await.expect("answered").unwrap();
    assert_eq!((status, error_of(&v)["code"].clone()), (413, json!("file_too_large")), "{v}");
    drop(tx);
    // Uploads being read at once are capped; one more is a 429 at once.
    let mut stalled = Vec::new();
    for _ in 0..hearth_server::services::retrieval::MAX_CONCURRENT_UPLOADS {
        let (tx, answer) = stalled_upload(&url, "/collections/c/documents");
        tx.unbounded_send(Ok(b"some text".to_vec())).unwrap();
        stalled.push((tx, answer));
    }
    // The stalled uploads take their slots once the server has their heads: on a loaded
    // machine that can take a while, so the test waits (boundedly) and says what it saw.
    let (mut refused, mut seen) = (Value::Null, Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while tokio::time::Instant::now() < deadline {
        let (status, v) = upload(&url, "c", vec![("b.txt", b"hello there".to_vec())], None).await;
        if status == 429 {
            refused = v;
            break;
        }
        seen.push(status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ended = stalled.iter().filter(|(_, answer)| answer.is_finished()).count();
    assert!(refused.is_object(), "no 429 while uploads stall ({ended} of them answered); statuses seen: {seen:?}");
    assert_eq!(error_of(&refused)["code"], "too_many_uploads", "{refused}");
    for (tx, answer) in stalled {
        drop(tx);
        let _ = answer.await;
    }
    let (status, v) = upload(&url, "c", vec![("b.txt", b"hello there".to_vec())], None).await;
    assert_eq!(status, 202, "slots come back: {v}");
    finish(&url, &v).await;
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[tokio::test]
async fn generate_upload_answers_from_the_uploaded_files() {
    let path = store_path("genup");
    let url = serve_rag(&path, 1 << 20).await;
    let docx = fixtures::docx(
        "Ship log",
        &[("Heading1", "Cargo"), ("", "The freighter Marrowind carries 412 crates of indigo dye.")],
    );
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(docx).file_name("log.docx"))
        .text("prompt", "How many crates of indigo dye does the Marrowind carry?")
        .text("model", SMOL)
        .text("max_tokens", "24");
    let res =
        reqwest::Client::new().post(format!("{url}/api/v1/generate/upload")).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["citations"][0]["document"], "log.docx", "{v}");
    assert_eq!(v["citations"][0]["section"], "Cargo");
    assert_eq!(v["documents"][0]["outcome"], "created");
    assert!(v["collection"].is_null(), "a temporary collection");
    let cols: Value = reqwest::get(format!("{url}/collections")).await.unwrap().json().await.unwrap();
    assert!(cols["data"].as_array().unwrap().is_empty(), "and it is gone after the answer");

    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"Plain notes about nothing.".to_vec()).file_name("n.txt"))
        .text("prompt", "Anything?")
        .text("collection", "kept")
        .text("model", SMOL)
        .text("max_tokens", "8");
    let res =
        reqwest::Client::new().post(format!("{url}/api/v1/generate/upload")).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        reqwest::get(format!("{url}/collections/kept")).await.unwrap().status(),
        200,
        "a named collection stays"
    );
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("n.txt"));
    let res =
        reqwest::Client::new().post(format!("{url}/api/v1/generate/upload")).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 400, "no prompt");
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

// Search embeds the query and generate/upload embeds files and answers: at the server's
// concurrency limit both are refused at once with 429 and Retry-After, like chat.
#[tokio::test]
async fn retrieval_at_the_concurrency_limit_is_429() {
    let path = store_path("busy");
    let limits = Limits { max_concurrent_requests: 1, ..Default::default() };
    let url = serve_limited(StoreLocation::Sqlite(path.clone()), 1 << 20, limits).await;
    assert_eq!(post(&url, "/collections", json!({"name": "c"})).await.0, 201);
    let (status, accepted) =
        upload(&url, "c", vec![("a.md", b"# Notes\n\nThe lighthouse keeper is Ilse.".to_vec())], None).await;
    assert_eq!(status, 202, "{accepted}");
    finish(&url, &accepted).await;

    let body =
        json!({"model": SMOL, "prompt": "Once upon a time", "max_tokens": 1500, "ignore_eos": true, "stream": true});
    let res = reqwest::Client::new().post(format!("{url}/v1/completions")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut held = res.bytes_stream();
    futures::StreamExt::next(&mut held).await.unwrap().unwrap();

    let res = reqwest::Client::new()
        .post(format!("{url}/collections/c/search"))
        .json(&json!({"query": "who keeps the lighthouse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let v: Value = res.json().await.unwrap();
    assert_eq!(error_of(&v)["code"], "too_many_requests", "{v}");
    assert_eq!(post(&url, "/collections", json!({"name": "d"})).await.0, 429, "creating may load the embedder");
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"Notes.".to_vec()).file_name("n.txt"))
        .text("prompt", "Anything?")
        .text("model", SMOL);
    let res =
        reqwest::Client::new().post(format!("{url}/api/v1/generate/upload")).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 429, "refused before the files are parsed");

    drop(held);
    let mut status = 0;
    for _ in 0..200 {
        status = post(&url, "/collections/c/search", json!({"query": "lighthouse"})).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "admitted again once the stream is gone");
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

// A generate/upload whose client went away left its temporary collection behind (issue 28).
#[tokio::test]
async fn generate_upload_removes_its_temporary_collection_when_the_client_goes_away() {
    let path = store_path("genup-gone");
    let url = serve_rag(&path, 1 << 20).await;
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"The lighthouse keeper counts ships.".to_vec()).file_name("n.txt"),
        )
        .text("prompt", "Write a long story about the lighthouse keeper.")
        .text("model", SMOL)
        .text("max_tokens", "400");
    let client = reqwest::Client::builder().timeout(Duration::from_millis(800)).build().unwrap();
    let gone = client.post(format!("{url}/api/v1/generate/upload")).multipart(form).send().await;
    assert!(gone.is_err(), "the client gave up before the answer");
    let mut left = usize::MAX;
    for _ in 0..200 {
        let cols: Value = reqwest::get(format!("{url}/collections")).await.unwrap().json().await.unwrap();
        left = cols["data"].as_array().unwrap().len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "the temporary collection is removed");
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}
