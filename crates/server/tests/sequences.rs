//! Sequence lifecycle against the real model, each test with its own worker so counters are
//! not shared: cancellation on disconnect frees the slot, the KV cache is reused.

mod common;

use common::*;
use futures::StreamExt;
use hearth_engine::EngineSettings;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn one_slot() -> EngineSettings {
    EngineSettings { ctx_size: 2048, parallel: 1, threads: 2, ..Default::default() }
}

/// Waits until `cond` holds, polling; fails after a generous bound (not a speed assertion).
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

// A client that disconnects mid-stream must free its sequence (and the only slot) so the next
// request runs; llama.cpp's server has leaked slots this way (llama.cpp #24496).
#[tokio::test]
async fn disconnect_mid_stream_frees_the_slot() {
    let models = manager(one_slot());
    let url = serve(models.clone()).await;
    let body =
        json!({"model": SMOL, "prompt": "Once upon a time", "max_tokens": 1500, "ignore_eos": true, "stream": true});
    let res = reqwest::Client::new().post(format!("{url}/v1/completions")).json(&body).send().await.unwrap();
    let mut stream = res.bytes_stream();
    let mut seen = 0;
    while seen < 3 {
        seen += stream.next().await.unwrap().unwrap().len().min(1);
    }
    let handle = models.get(SMOL).await.unwrap();
    assert_eq!(handle.stats.active.load(Ordering::Relaxed), 1);
    drop(stream);
    eventually("the cancelled sequence to be freed", || handle.stats.active.load(Ordering::Relaxed) == 0).await;
    assert_eq!(handle.stats.cancelled.load(Ordering::Relaxed), 1);
    let (status, v) = post(&url, "/v1/completions", json!({"model": SMOL, "prompt": "Hello", "max_tokens": 3})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0, "a cancelled sequence's KV cells are dropped");
}

#[tokio::test]
async fn disconnect_of_non_streaming_request_cancels_it() {
    let models = manager(one_slot());
    let url = serve(models.clone()).await;
    let body = json!({"model": SMOL, "prompt": "Once upon a time", "max_tokens": 1500, "ignore_eos": true});
    let req =
        tokio::spawn(
            async move { reqwest::Client::new().post(format!("{url}/v1/completions")).json(&body).send().await },
        );
    let handle = models.get(SMOL).await.unwrap();
    eventually("the request to start", || handle.stats.active.load(Ordering::Relaxed) == 1).await;
    req.abort();
    eventually("the aborted request to be cancelled", || handle.stats.active.load(Ordering::Relaxed) == 0).await;
    assert_eq!(handle.stats.cancelled.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn repeated_prompt_reuses_the_kv_cache() {
    let url = serve(manager(one_slot())).await;
    let req = chat(
        SMOL,
        "Tell me about the history of the bicycle in three sentences.",
        json!({"temperature": 0, "max_tokens": 4}),
    );
    let (_, first) = post(&url, "/v1/chat/completions", req.clone()).await;
    assert_eq!(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    let (_, v) = post(&url, "/v1/chat/completions", req).await;
    let prompt = v["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap(), prompt - 1, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], first["choices"][0]["message"]["content"]);
    assert_eq!(v["timings"]["cached_n"].as_u64().unwrap(), prompt - 1);
}

#[tokio::test]
async fn requests_beyond_the_slots_wait_and_all_complete() {
    let url = serve(manager(EngineSettings { ctx_size: 1024, parallel: 2, threads: 2, ..Default::default() })).await;
    let jobs: Vec<_> = (0..5)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                post(&url, "/v1/completions", json!({"model": SMOL, "prompt": format!("{i}, {}, {},", i + 1, i + 2), "max_tokens": 6, "temperature": 0})).await
            })
        })
        .collect();
    for j in jobs {
        let (status, v) = j.await.unwrap();
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["usage"]["completion_tokens"], 6);
    }
}

/// Starts a long stream and reads its first bytes, so it holds a sequence and a permit.
async fn hold_a_stream(url: &str) -> impl futures::Stream {
    let body =
        json!({"model": SMOL, "prompt": "Once upon a time", "max_tokens": 1500, "ignore_eos": true, "stream": true});
    let res = reqwest::Client::new().post(format!("{url}/v1/completions")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    stream.next().await.unwrap().unwrap();
    stream
}

/// Sends a small request that must be refused with `status`, `Retry-After` and `code`.
async fn expect_refusal(url: &str, status: u16, code: &str) {
    let body = json!({"model": SMOL, "prompt": "x"});
    let res = reqwest::Client::new().post(format!("{url}/v1/completions")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), status);
    assert!(res.headers().contains_key("retry-after"));
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_of(&v)["code"], code);
}

#[tokio::test]
async fn beyond_max_concurrent_requests_is_429_with_retry_after() {
    let limits = hearth_server::Limits { max_concurrent_requests: 1, ..Default::default() };
    let url = serve_with(manager(one_slot()), limits).await;
    let held = hold_a_stream(&url).await;
    expect_refusal(&url, 429, "too_many_requests").await;
    // Every other route that costs the model work takes a permit too.
    for (path, body) in [
        ("/tokenize", json!({"model": SMOL, "content": "hello"})),
        ("/detokenize", json!({"model": SMOL, "tokens": [1, 2]})),
        ("/models/load", json!({"model": SMOL})),
        ("/v1/messages/count_tokens", json!({"model": SMOL, "messages": [{"role": "user", "content": "hi"}]})),
        ("/api/generate", json!({"model": SMOL})),
        ("/api/chat", json!({"model": SMOL, "messages": []})),
    ] {
        assert_eq!(post(&url, path, body).await.0, 429, "{path} while the one permit is held");
    }
    drop(held);
    // The permit comes back when the stream ends; poll until a request is admitted again.
    let mut status = 0;
    for _ in 0..200 {
        status = post(&url, "/v1/completions", json!({"model": SMOL, "prompt": "x", "max_tokens": 1})).await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn waiting_longer_than_queue_timeout_is_503() {
    let limits = hearth_server::Limits { queue_timeout: Duration::from_millis(300), ..Default::default() };
    let models = manager(one_slot());
    let url = serve_with(models.clone(), limits).await;
    let held = hold_a_stream(&url).await;
    expect_refusal(&url, 503, "queue_timeout").await;
    drop(held);
    let handle = models.get(SMOL).await.unwrap();
    eventually("the held stream to be cancelled", || handle.stats.active.load(Ordering::Relaxed) == 0).await;
}

// Same seed and request give the same text, also when the second run hits the prefix cache
// (the last prompt token is always evaluated alone, so the logits are bit-identical). Its own
// worker: other sequences in the same batch change the floating-point path.
#[tokio::test]
async fn same_seed_same_text_with_and_without_cache() {
    let url = serve(manager(one_slot())).await;
    let req = json!({"model": SMOL, "prompt": "Once upon a time", "max_tokens": 24, "temperature": 1.0, "seed": 1234});
    let (_, a) = post(&url, "/v1/completions", req.clone()).await;
    let (_, b) = post(&url, "/v1/completions", req.clone()).await;
    assert!(b["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap() > 0, "{b}");
    assert_eq!(a["choices"][0]["text"], b["choices"][0]["text"]);
    assert!(!a["choices"][0]["text"].as_str().unwrap().is_empty());
    let mut other = req;
    other["seed"] = json!(99);
    let (_, c) = post(&url, "/v1/completions", other).await;
    assert_eq!(c["usage"]["completion_tokens"], 24);
}

// 50 streams cancelled mid-stream must all be freed: afterwards every slot runs again and no
// KV cells are left behind (llama.cpp #24496 leaked slots this way).
#[tokio::test]
async fn fifty_cancelled_streams_leave_full_capacity() {
    let models = manager(EngineSettings { ctx_size: 1024, parallel: 4, threads: 2, ..Default::default() });
    let url = serve(models.clone()).await;
    let body =
        json!({"model": SMOL, "prompt": "Once upon a time", "max_tokens": 900, "ignore_eos": true, "stream": true});
    let jobs: Vec<_> = (0..50)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            tokio::spawn(async move {
                let res =
                    reqwest::Client::new().post(format!("{url}/v1/completions")).json(&body).send().await.unwrap();
                assert_eq!(res.status(), 200);
                let mut stream = res.bytes_stream();
                stream.next().await.unwrap().unwrap();
                // Dropping the stream here disconnects mid-generation.
            })
        })
        .collect();
    for j in jobs {
        j.await.unwrap();
    }
    let handle = models.get(SMOL).await.unwrap();
    eventually("all 50 to be cancelled", || handle.stats.cancelled.load(Ordering::Relaxed) == 50).await;
    assert_eq!(handle.stats.active.load(Ordering::Relaxed), 0);
    assert_eq!(handle.stats.waiting.load(Ordering::Relaxed), 0);
    // Full capacity: four requests run at once and finish with exact counts.
    let burst: Vec<_> = (0..4)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                post(
                    &url,
                    "/v1/completions",
                    json!({"model": SMOL, "prompt": format!("{i} little pigs"), "max_tokens": 40, "ignore_eos": true}),
                )
                .await
            })
        })
        .collect();
    let mut peak = 0;
    while !burst.iter().all(|j| j.is_finished()) {
        peak = peak.max(handle.stats.active.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for j in burst {
        let (status, v) = j.await.unwrap();
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["usage"]["completion_tokens"], 40);
    }
    assert_eq!(peak, 4, "all four slots ran at once");
    let (_, v) =
        post(&url, "/v1/completions", json!({"model": SMOL, "prompt": "Once upon a time", "max_tokens": 1})).await;
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0, "cancelled sequences left no KV cells");
}

// n > 1: the prompt is evaluated once; the other choices start from a copy of its KV cells
// (they report the whole prompt as cached) and sample with their own seeds.
#[tokio::test]
async fn choices_share_one_prompt_evaluation() {
    use hearth_engine::{Event, GenerateRequest, KeepAlive, ModelKind, PromptInput, SamplingParams};
    let models = manager(EngineSettings { ctx_size: 4096, parallel: 4, threads: 2, ..Default::default() });
    let handle = models.acquire(SMOL, Some(ModelKind::Causal), KeepAlive::Default).await.unwrap();
    let sampling =
        SamplingParams { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, seed: 3, ..SamplingParams::greedy() };
    let prompt = "Write a long story about a dragon who learns to cook. ".repeat(8);
    let req = GenerateRequest {
        prompt: PromptInput::Text { text: prompt, add_special: true },
        sampling,
        max_tokens: Some(12),
        stop: Vec::new(),
        ignore_eos: true,
        logprobs: None,
    };
    let mut done = Vec::new();
    for mut rx in handle.submit_n(handle.validate(req).await.unwrap(), 4).unwrap() {
        let mut text = String::new();
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Text { text: t, .. } => text += &t,
                Event::Done { completion, .. } => done.push((text.clone(), completion)),
                Event::Error(e) => panic!("{e}"),
                _ => {}
            }
        }
    }
    assert_eq!(done.len(), 4);
    let prompt_tokens = done[0].1.prompt_tokens;
    assert!(prompt_tokens > 80);
    assert_eq!(done[0].1.cached_tokens, 0, "the first choice evaluates the prompt");
    for (_, c) in &done[1..] {
        assert_eq!(c.cached_tokens, prompt_tokens, "the other choices copy its cells");
        assert_eq!(c.completion_tokens, 12);
    }
    let distinct: std::collections::HashSet<&str> = done.iter().map(|(t, _)| t.as_str()).collect();
    assert!(distinct.len() > 1, "each choice samples with its own seed: {done:?}");
    assert!(
        handle
            .submit_n(handle.validate(GenerateRequest { max_tokens: Some(1), ..done_request() }).await.unwrap(), 5)
            .is_err(),
        "more than the slots"
    );
}

fn done_request() -> hearth_engine::GenerateRequest {
    hearth_engine::GenerateRequest {
        prompt: hearth_engine::PromptInput::Text { text: "x".into(), add_special: true },
        sampling: hearth_engine::SamplingParams::greedy(),
        max_tokens: None,
        stop: Vec::new(),
        ignore_eos: false,
        logprobs: None,
    }
}
