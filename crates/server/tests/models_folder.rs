//! The models folder is live, and `POST /api/pull` and `/models/pull` fill it: a model copied in
//! while the server runs is served once the copy is whole, one deleted disappears, and a pull
//! from a hub on loopback (the real SmolLM2 file) answers chat under the name it was pulled as;
//! a pull job shows its progress, can be cancelled, and resumes where it stopped.

mod common;

use common::{chat, models_dir, post, post_raw, SMOL};
use hearth_engine::{EngineSettings, ModelManager, Registry};
use hearth_hub::testing::{self, HubFile, LoopbackHub};
use hearth_hub::HubSettings;
use hearth_server::{AppState, Limits};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-folder-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("models")).unwrap();
    d
}

fn manager(dir: &Path) -> Arc<ModelManager> {
    let registry = Registry::scan(dir, &[], &[]).unwrap();
    let loader = hearth_llama::LlamaLoader::new().unwrap();
    let settings = EngineSettings { parallel: 2, ctx_size: 2048, ..Default::default() };
    let m = Arc::new(ModelManager::new(registry, Arc::new(loader), common::isolated(settings), None));
    m.spawn_reaper(Duration::from_millis(200));
    m
}

async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hearth_server::app(state)).await });
    url
}

async fn ids(url: &str) -> Vec<String> {
    let v: serde_json::Value = reqwest::get(format!("{url}/v1/models")).await.unwrap().json().await.unwrap();
    v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

/// Polls until `f` holds (the reaper looks at the folder every 200 ms), or ten seconds pass.
async fn eventually(url: &str, f: impl Fn(&[String]) -> bool) -> Vec<String> {
    for _ in 0..100 {
        let now = ids(url).await;
        if f(&now) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ids(url).await
}

#[tokio::test]
async fn a_copied_model_is_served_once_whole_and_a_deleted_one_goes() {
    let d = scratch("live");
    let dir = d.join("models");
    let url = serve(AppState::new(manager(&dir), Limits::default())).await;
    assert!(ids(&url).await.is_empty());
    let bytes = std::fs::read(models_dir().join(format!("{SMOL}.gguf"))).unwrap();
    // A copy in progress: the header is there, most of the weights are not.
    let path = dir.join("copied.gguf");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&bytes[..bytes.len() / 2]).unwrap();
    f.flush().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(ids(&url).await.is_empty(), "a half-copied file is not served");
    f.write_all(&bytes[bytes.len() / 2..]).unwrap();
    drop(f);
    let now = eventually(&url, |ids| ids.iter().any(|i| i == "copied")).await;
    assert_eq!(now, ["copied"]);
    let (status, v) =
        post(&url, "/v1/chat/completions", chat("copied", "Say hi.", serde_json::json!({"max_tokens": 4}))).await;
    assert_eq!(status, 200, "{v}");
    std::fs::remove_file(&path).unwrap();
    assert!(eventually(&url, <[String]>::is_empty).await.is_empty(), "a deleted model leaves the list");
    let (status, _) =
        post(&url, "/v1/chat/completions", chat("copied", "Say hi.", serde_json::json!({"max_tokens": 4}))).await;
    assert_eq!(status, 404);
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn api_pull_streams_progress_and_the_pulled_name_chats() {
    let d = scratch("pull");
    let bytes = std::fs::read(models_dir().join(format!("{SMOL}.gguf"))).unwrap();
    let mut repo = BTreeMap::new();
    repo.insert("SmolLM2-135M-Instruct-Q4_1.gguf".to_string(), HubFile::new(bytes.into()));
    let hub = Arc::new(LoopbackHub { repos: [("test/SmolLM2-GGUF".to_string(), repo)].into(), ..Default::default() });
    let endpoint = testing::serve(hub.clone()).await;
    let settings = HubSettings { endpoint, token: None, cache: d.join("hf") };
    let url = serve(AppState::new(manager(&d.join("models")), Limits::default()).with_hub(settings)).await;
    let name = "hf.co/test/SmolLM2-GGUF:Q4_1";
    let (status, ctype, body) = post_raw(&url, "/api/pull", serde_json::json!({ "model": name })).await;
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("application/x-ndjson"), "{ctype}");
    let lines: Vec<serde_json::Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.first().unwrap()["status"], "pulling manifest");
    assert!(
        lines.iter().any(|l| l["digest"].as_str().is_some_and(|d| d.starts_with("sha256:")) && l["total"].is_u64()),
        "{body}"
    );
    assert_eq!(lines.last().unwrap()["status"], "success", "{body}");
    // Ollama's clients chat with the name they pulled.
    let ask = serde_json::json!({"model": name, "stream": false, "messages": [{"role": "user", "content": "Hi"}], "options": {"num_predict": 4}});
    let (status, v) = post(&url, "/api/chat", ask).await;
    assert_eq!(status, 200, "{v}");
    assert!(ids(&url).await.contains(&"SmolLM2-135M-Instruct-Q4_1".to_string()));
    // OpenAI's clients retrieve it by that name too, slashes and all.
    for path in [format!("/v1/models/{name}"), format!("/v1/models/{}", name.replace('/', "%2F"))] {
        let m: serde_json::Value = reqwest::get(format!("{url}{path}")).await.unwrap().json().await.unwrap();
        assert_eq!(m["id"], "SmolLM2-135M-Instruct-Q4_1", "{path}: {m}");
    }
    // A name the hub does not have: Ollama's error shape, a 404.
    let (status, v) =
        post(&url, "/api/pull", serde_json::json!({ "model": "test/SmolLM2-GGUF:Q6_K", "stream": false })).await;
    assert_eq!(status, 404, "{v}");
    assert!(v["error"].as_str().is_some_and(|e| e.contains("Q4_1")), "the quants there are: {v}");
    let _ = std::fs::remove_dir_all(&d);
}

async fn job(url: &str, method: reqwest::Method, path: &str) -> (u16, serde_json::Value) {
    let res = reqwest::Client::new().request(method, format!("{url}{path}")).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Polls a pull job until `f` holds, or thirty seconds pass.
async fn job_until(url: &str, id: &str, f: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..300 {
        last = job(url, reqwest::Method::GET, &format!("/models/pull/{id}")).await.1;
        if f(&last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test]
async fn a_pull_job_shows_progress_cancels_and_resumes() {
    let d = scratch("pull-job");
    let bytes = std::fs::read(models_dir().join(format!("{SMOL}.gguf"))).unwrap();
    let size = bytes.len() as u64;
    let mut repo = BTreeMap::new();
    repo.insert("SmolLM2-135M-Instruct-Q4_1.gguf".to_string(), HubFile::new(bytes.into()));
    let hub = Arc::new(LoopbackHub { repos: [("test/SmolLM2-GGUF".to_string(), repo)].into(), ..Default::default() });
    hub.pace.store(8 << 20, Ordering::SeqCst);
    let endpoint = testing::serve(hub.clone()).await;
    let settings = HubSettings { endpoint, token: None, cache: d.join("hf") };
    let url = serve(AppState::new(manager(&d.join("models")), Limits::default()).with_hub(settings)).await;
    let name = "test/SmolLM2-GGUF:Q4_1";
    let (status, started) = post(&url, "/models/pull", serde_json::json!({ "model": name })).await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["status"], "running");
    let id = started["id"].as_str().unwrap().to_string();
    // Asked again while it runs: the same job, not a second download.
    let (status, again) = post(&url, "/models/pull", serde_json::json!({ "model": format!("hf.co/{name}") })).await;
    assert_eq!((status, again["id"].as_str()), (200, Some(id.as_str())), "{again}");
    let moving = job_until(&url, &id, |j| j["completed"].as_u64().is_some_and(|c| c > 4 << 20)).await;
    assert_eq!(moving["total"].as_u64(), Some(size), "{moving}");
    assert!(moving["bytes_per_second"].as_f64().is_some_and(|b| b > 0.0), "{moving}");
    assert!(moving["eta_seconds"].as_f64().is_some_and(|s| s > 0.0), "{moving}");
    assert_eq!(moving["file"], "SmolLM2-135M-Instruct-Q4_1.gguf");
    // Cancelled half-way: nothing is served, the bytes stay for a resume.
    let (status, cancelled) = job(&url, reqwest::Method::DELETE, &format!("/models/pull/{id}")).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!ids(&url).await.iter().any(|m| m.contains("SmolLM2")), "a cancelled pull serves nothing");
    // Pulled again at full speed: it resumes with Range and ends done, with the model served.
    hub.pace.store(0, Ordering::SeqCst);
    let (status, resumed) = post(&url, "/models/pull", serde_json::json!({ "model": name })).await;
    assert_eq!(status, 202, "{resumed}");
    let rid = resumed["id"].as_str().unwrap().to_string();
    assert_ne!(rid, id);
    let done = job_until(&url, &rid, |j| j["status"] != "running").await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!((done["completed"].as_u64(), done["total"].as_u64()), (Some(size), Some(size)), "{done}");
    let model = done["model_id"].as_str().unwrap().to_string();
    assert!(ids(&url).await.contains(&model), "{model} is served");
    assert!(hub.downloads().iter().any(|s| s.2.as_deref().is_some_and(|r| r != "bytes=0-")), "{:?}", hub.downloads());
    // Here already: a done job at once. The list has both, newest first.
    let (status, here) = post(&url, "/models/pull", serde_json::json!({ "model": name })).await;
    assert_eq!((status, here["status"].as_str(), here["model_id"].as_str()), (200, Some("done"), Some(model.as_str())));
    let (_, list) = job(&url, reqwest::Method::GET, "/models/pull").await;
    let listed: Vec<&str> = list["data"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [rid.as_str(), id.as_str()], "{list}");
    // A finished job is forgotten by DELETE.
    assert_eq!(job(&url, reqwest::Method::DELETE, &format!("/models/pull/{id}")).await.0, 200);
    let (status, gone) = job(&url, reqwest::Method::GET, &format!("/models/pull/{id}")).await;
    assert_eq!((status, gone["error"]["code"].as_str()), (404, Some("pull_not_found")), "{gone}");
    // A quant the hub lacks fails the job with a reason; a bad reference is a 400 at once.
    let (_, missing) = post(&url, "/models/pull", serde_json::json!({ "model": "test/SmolLM2-GGUF:Q6_K" })).await;
    let failed = job_until(&url, missing["id"].as_str().unwrap(), |j| j["status"] != "running").await;
    assert_eq!(
        (failed["status"].as_str(), failed["error"]["code"].as_str()),
        (Some("failed"), Some("model_not_found"))
    );
    assert!(failed["error"]["message"].as_str().is_some_and(|m| m.contains("Q4_1")), "{failed}");
    let (status, bad) = post(&url, "/models/pull", serde_json::json!({ "model": "not a reference" })).await;
    assert_eq!((status, bad["error"]["code"].as_str()), (400, Some("invalid_model_reference")), "{bad}");
    let _ = std::fs::remove_dir_all(&d);
}

/// A model deleted while it answers leaves the list at once (no new request gets it), the
/// running stream still ends normally, and the model is unloaded once that stream is done.
#[tokio::test]
async fn a_model_deleted_mid_stream_finishes_the_stream_then_unloads() {
    use futures::StreamExt;
    let d = scratch("mid-stream");
    let dir = d.join("models");
    std::fs::copy(models_dir().join(format!("{SMOL}.gguf")), dir.join("busy.gguf")).unwrap();
    let url = serve(AppState::new(manager(&dir), Limits::default())).await;
    let body = serde_json::json!({"model": "busy", "prompt": "Once upon a time", "max_tokens": 120,
        "ignore_eos": true, "stream": true});
    let res = reqwest::Client::new().post(format!("{url}/v1/completions")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut text = String::from_utf8_lossy(&stream.next().await.unwrap().unwrap()).into_owned();
    std::fs::remove_file(dir.join("busy.gguf")).unwrap();
    assert!(eventually(&url, <[String]>::is_empty).await.is_empty(), "it left the list while answering");
    while let Some(chunk) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(text.contains(r#""finish_reason":"length""#) && text.trim_end().ends_with("data: [DONE]"), "{text}");
    let mut loaded = serde_json::Value::Null;
    for _ in 0..100 {
        loaded = reqwest::get(format!("{url}/models/loaded")).await.unwrap().json().await.unwrap();
        if loaded["data"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(loaded["data"], serde_json::json!([]), "unloaded once the stream ended: {loaded}");
    let _ = std::fs::remove_dir_all(&d);
}
