//! Model lifecycle on the real models: a memory budget that holds one model at a time, LRU
//! unloading that never touches a busy model, keep_alive, the load/unload/loaded API, and a
//! truncated GGUF that fails alone.

mod common;

use common::*;
use futures::StreamExt;
use hearth_engine::{EngineSettings, KvType, ModelManager, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

fn settings() -> EngineSettings {
    EngineSettings { ctx_size: 512, parallel: 1, threads: 2, ..Default::default() }
}

/// A manager over SmolLM2 and Gemma with a budget that holds either one, not both.
fn one_at_a_time() -> Arc<ModelManager> {
    let scanned = Registry::scan(&models_dir(), &[SMOL.into(), GEMMA.into()], &[]).unwrap();
    let kv = 512;
    let biggest = scanned.models().map(|m| m.memory_bytes(kv, KvType::F16)).max().unwrap();
    let both: u64 = scanned.models().map(|m| m.memory_bytes(kv, KvType::F16)).sum();
    assert!(biggest + (1 << 20) < both);
    let s = EngineSettings { memory_budget: biggest + (1 << 20), ..settings() };
    let loader = hearth_llama::LlamaLoader::new().unwrap();
    Arc::new(ModelManager::new(scanned, Arc::new(loader), common::isolated(s), Some(SMOL.into())))
}

async fn loaded_ids(url: &str) -> Vec<String> {
    let v: Value = reqwest::get(format!("{url}/models/loaded")).await.unwrap().json().await.unwrap();
    v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

fn complete(model: &str, max_tokens: u32) -> Value {
    json!({"model": model, "prompt": "Paris is the capital of", "max_tokens": max_tokens, "temperature": 0})
}

#[tokio::test]
async fn a_memory_budget_unloads_the_least_recently_used_idle_model() {
    let url = serve(one_at_a_time()).await;
    assert_eq!(post(&url, "/v1/completions", complete(SMOL, 4)).await.0, 200);
    assert_eq!(loaded_ids(&url).await, [SMOL]);
    assert_eq!(post(&url, "/v1/completions", complete(GEMMA, 4)).await.0, 200);
    assert_eq!(loaded_ids(&url).await, [GEMMA], "SmolLM2 made room");

    // While Gemma streams, it cannot be unloaded for SmolLM2: 503, and Gemma keeps streaming.
    let body =
        json!({"model": GEMMA, "prompt": "Once upon a time", "max_tokens": 400, "ignore_eos": true, "stream": true});
    let res = reqwest::Client::new().post(format!("{url}/v1/completions")).json(&body).send().await.unwrap();
    let mut stream = res.bytes_stream();
    stream.next().await.unwrap().unwrap();
    let (status, v) = post(&url, "/v1/completions", complete(SMOL, 4)).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(error_of(&v)["code"], "model_capacity_exceeded");
    let (status, v) = post(&url, "/models/unload", json!({"model": GEMMA})).await;
    assert_eq!((status, error_of(&v)["code"].clone()), (409, json!("model_busy")));
    let mut rest = String::new();
    while let Some(chunk) = stream.next().await {
        rest.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert!(rest.contains("[DONE]"));
    assert_eq!(post(&url, "/v1/completions", complete(SMOL, 4)).await.0, 200, "room once Gemma is idle");
    assert_eq!(loaded_ids(&url).await, [SMOL]);
}

#[tokio::test]
async fn load_unload_loaded_and_keep_alive() {
    let scanned = Registry::scan(&models_dir(), &[SMOL.into(), MINILM_Q8.into()], &[]).unwrap();
    let loader = hearth_llama::LlamaLoader::new().unwrap();
    let models = Arc::new(ModelManager::new(scanned, Arc::new(loader), common::isolated(settings()), None));
    let url = serve(models.clone()).await;
    let (status, v) = post(&url, "/models/load", json!({"model": MINILM_Q8})).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["memory_bytes"].as_u64().unwrap() > 20_000_000);
    let (status, _) = post(&url, "/models/load", json!({"model": SMOL, "keep_alive": -1})).await;
    assert_eq!(status, 200);
    let v: Value = reqwest::get(format!("{url}/models/loaded")).await.unwrap().json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let smol = v["data"].as_array().unwrap().iter().find(|m| m["id"] == SMOL).unwrap();
    assert_eq!(smol["kind"], "causal");
    assert!(smol["memory_bytes"].as_u64().unwrap() > 98_000_000, "file plus KV");
    assert!(smol.get("expires_in").is_none(), "kept forever");
    assert!(smol["last_used"].as_u64().unwrap() > 1_700_000_000);

    // keep_alive 0: unloaded as soon as it is idle (the reaper's pass is run here directly).
    let (status, _) = post(&url, "/v1/embeddings", json!({"model": MINILM_Q8, "input": "x", "keep_alive": 0})).await;
    assert_eq!(status, 200);
    // The worker marks itself idle just after answering: retry the reaper's pass briefly.
    let mut unloaded = Vec::new();
    for _ in 0..100 {
        unloaded = models.unload_expired().await;
        if !unloaded.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(unloaded, [MINILM_Q8]);
    assert_eq!(loaded_ids(&url).await, [SMOL]);
    let (status, v) =
        post(&url, "/v1/embeddings", json!({"model": MINILM_Q8, "input": "x", "keep_alive": "soon"})).await;
    assert_eq!((status, error_of(&v)["param"].clone()), (400, json!("keep_alive")));

    let (status, v) = post(&url, "/models/unload", json!({"model": SMOL})).await;
    assert_eq!((status, v["unloaded"].clone()), (200, json!(true)));
    let (status, v) = post(&url, "/models/unload", json!({"model": SMOL})).await;
    assert_eq!((status, v["unloaded"].clone()), (200, json!(false)));
    assert!(loaded_ids(&url).await.is_empty());
    assert_eq!(post(&url, "/models/load", json!({"model": "nope"})).await.0, 404);
}

#[tokio::test]
async fn a_truncated_gguf_fails_alone() {
    let dir = std::env::temp_dir().join(format!("hearth-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = models_dir().join(format!("{SMOL}.gguf"));
    let bytes = std::fs::read(&good).unwrap();
    // The header and tensor table survive; the weights are cut off (a copy in progress).
    std::fs::write(dir.join("truncated.gguf"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(dir.join("garbage.gguf"), b"GGUF\x03\x00\x00\x00 not really").unwrap();
    // A whole, well-formed GGUF that is no model llama.cpp can load: no tensors, no parameters.
    std::fs::write(dir.join("hollow.gguf"), hollow_gguf()).unwrap();
    std::os::unix::fs::symlink(&good, dir.join(format!("{SMOL}.gguf"))).unwrap();
    let registry = Registry::scan(&dir, &[], &[]).unwrap();
    assert!(registry.resolve("garbage").is_err(), "an unreadable header is skipped at scan");
    assert!(registry.resolve("truncated").is_err(), "a file shorter than its header says is not served");
    let loader = hearth_llama::LlamaLoader::new().unwrap();
    let models =
        Arc::new(ModelManager::new(registry, Arc::new(loader), common::isolated(settings()), Some(SMOL.into())));
    let url = serve(models).await;
    let (status, v) = post(&url, "/v1/completions", complete("hollow", 4)).await;
    assert_eq!(status, 500, "{v}");
    let e = error_of(&v);
    assert_eq!(e["code"], "model_load_failed");
    assert!(e["message"].as_str().unwrap().contains("corrupt or truncated"));
    assert_eq!(post(&url, "/v1/completions", complete(SMOL, 4)).await.0, 200, "other models keep serving");
    assert_eq!(post(&url, "/v1/completions", complete("hollow", 4)).await.0, 500, "and it fails again, cleanly");
    assert_eq!(post(&url, "/v1/completions", complete("truncated", 4)).await.0, 404);
    std::fs::remove_dir_all(&dir).ok();
}

/// A GGUF v3 header with only `general.architecture = llama`: complete, and not a model.
fn hollow_gguf() -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes()); // tensors
    b.extend(1u64.to_le_bytes()); // metadata
    let key = "general.architecture";
    b.extend((key.len() as u64).to_le_bytes());
    b.extend(key.as_bytes());
    b.extend(8u32.to_le_bytes()); // string
    b.extend(5u64.to_le_bytes());
    b.extend(b"llama");
    b
}

/// scripts/test runs these tests with the models in worker processes, as `hearth serve` does.
#[tokio::test]
async fn models_run_in_worker_processes_when_the_test_run_says_so() {
    let m = manager(settings());
    let h = m.get(SMOL).await.unwrap();
    let isolated = std::env::var_os("HEARTH_TEST_WORKER").is_some();
    assert_eq!(h.pid().is_some(), isolated);
    assert_eq!(h.rss_bytes().is_some_and(|r| r > 1 << 20), isolated);
}
