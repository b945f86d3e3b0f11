//! The OpenAI-compatible API against the real SmolLM2 and Gemma models, over a real socket.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn chat_answers_a_factual_question() {
    let url = serve(shared()).await;
    let (status, body) = post(
        &url,
        "/v1/chat/completions",
        chat(SMOL, "What is the capital of France?", json!({"temperature": 0, "max_tokens": 30})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], SMOL);
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(choice["message"]["content"].as_str().unwrap().contains("Paris"), "{body}");
    let u = &body["usage"];
    assert_eq!(u["total_tokens"], u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap());
    assert!(u["prompt_tokens"].as_u64().unwrap() > 10);
}

/// Splits an SSE body into its `data:` payloads, checking the framing byte by byte.
fn sse_payloads(raw: &str) -> Vec<String> {
    assert!(raw.ends_with("data: [DONE]\n\n"), "stream must end with [DONE]: {raw:?}");
    let frames: Vec<&str> = raw.strip_suffix("\n\n").unwrap().split("\n\n").collect();
    frames
        .iter()
        .map(|f| {
            assert!(f.starts_with("data: ") && !f.contains('\n'), "bad frame {f:?}");
            f["data: ".len()..].to_string()
        })
        .collect()
}

#[tokio::test]
async fn chat_stream_framing_is_exact() {
    let url = serve(shared()).await;
    let req = chat(SMOL, "What is the capital of France?", json!({"temperature": 0, "max_tokens": 20}));
    let (_, full) = post(&url, "/v1/chat/completions", req.clone()).await;
    let mut sreq = req.clone();
    sreq["stream"] = json!(true);
    sreq["stream_options"] = json!({"include_usage": true});
    let (status, ctype, raw) = post_raw(&url, "/v1/chat/completions", sreq).await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let payloads = sse_payloads(&raw);
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = payloads[..payloads.len() - 1].iter().map(|p| serde_json::from_str(p).unwrap()).collect();
    let id = chunks[0]["id"].clone();
    assert!(chunks.iter().all(|c| c["id"] == id && c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks[1..].iter().all(|c| c["choices"].get(0).is_none_or(|ch| ch["delta"].get("role").is_none())));
    let finishes: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .map(|ch| &ch["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes.len(), 1, "exactly one finish_reason");
    let (last, rest) = chunks.split_last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert!(rest.iter().all(|c| c.get("usage") == Some(&Value::Null)), "usage null on all but the last chunk");
    let text: String = rest.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, full["choices"][0]["message"]["content"].as_str().unwrap(), "stream and non-stream agree");
    assert_eq!(last["usage"]["completion_tokens"], full["usage"]["completion_tokens"]);
    assert_eq!(last["usage"]["prompt_tokens"], full["usage"]["prompt_tokens"]);
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_field() {
    let url = serve(shared()).await;
    let (_, _, raw) =
        post_raw(&url, "/v1/completions", json!({"model": SMOL, "prompt": "Hello", "max_tokens": 3, "stream": true}))
            .await;
    for p in sse_payloads(&raw).iter().filter(|p| *p != "[DONE]") {
        let v: Value = serde_json::from_str(p).unwrap();
        assert!(v.get("usage").is_none(), "{v}");
    }
}

#[tokio::test]
async fn stop_sequence_ends_generation_and_is_not_emitted() {
    let url = serve(shared()).await;
    let body =
        json!({"model": SMOL, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 20, "temperature": 0, "stop": ["8", "never"]});
    let (status, v) = post(&url, "/v1/completions", body.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["text"], " 6, 7, ");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    // The same stop split across tokens: " 7," is ' ', '7', ','.
    let (_, v) = post(
        &url,
        "/v1/completions",
        json!({"model": SMOL, "prompt": "1, 2, 3, 4, 5,", "max_tokens": 20, "temperature": 0, "stop": "7, 8"}),
    )
    .await;
    assert_eq!(v["choices"][0]["text"], " 6, ");
    let mut s = body;
    s["stream"] = json!(true);
    let (_, _, raw) = post_raw(&url, "/v1/completions", s).await;
    let text: String = sse_payloads(&raw)
        .iter()
        .filter(|p| *p != "[DONE]")
        .filter_map(|p| serde_json::from_str::<Value>(p).ok()?["choices"][0]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, " 6, 7, ");
}

#[tokio::test]
async fn max_tokens_gives_length_with_exact_count() {
    let url = serve(shared()).await;
    for (field, n) in [("max_tokens", 7), ("max_completion_tokens", 5)] {
        let (status, v) = post(
            &url,
            "/v1/chat/completions",
            chat(SMOL, "Count from one to one hundred.", json!({"temperature": 0, field: n})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["completion_tokens"], n);
    }
}

#[tokio::test]
async fn context_overflow_is_400_in_openai_wording() {
    let url = serve(shared()).await;
    let (status, v) = post(&url, "/v1/chat/completions", chat(SMOL, "hi", json!({"max_tokens": 100000}))).await;
    assert_eq!(status, 400);
    let e = error_of(&v);
    assert_eq!(e["code"], "context_length_exceeded");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.starts_with("This model's maximum context length is 2048 tokens. However, you requested "), "{msg}");
    let long = "hello ".repeat(3000);
    let (status, v) = post(&url, "/v1/completions", json!({"model": SMOL, "prompt": long})).await;
    assert_eq!(status, 400);
    assert_eq!(error_of(&v)["code"], "context_length_exceeded");
}

#[tokio::test]
async fn unknown_and_path_like_models_are_404() {
    let url = serve(shared()).await;
    for name in ["nope", "../models/SmolLM2-135M-Instruct.Q4_1", "/etc/passwd", "SmolLM2-135M-Instruct.Q4_1.gguf"] {
        let (status, v) = post(&url, "/v1/chat/completions", chat(name, "hi", json!({}))).await;
        assert_eq!(status, 404, "{name}: {v}");
        assert_eq!(error_of(&v)["code"], "model_not_found");
        assert_eq!(error_of(&v)["param"], "model");
    }
    let res = reqwest::get(format!("{url}/v1/models/nope")).await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn bad_requests_are_precise_4xx() {
    let url = serve(shared()).await;
    let cases = [
        (chat(SMOL, "hi", json!({"temperature": 5})), "temperature"),
        (chat(SMOL, "hi", json!({"top_p": 1.5})), "top_p"),
        (chat(SMOL, "hi", json!({"max_tokens": 0})), "max_tokens"),
        (chat(SMOL, "hi", json!({"presence_penalty": -3})), "presence_penalty"),
        (chat(SMOL, "hi", json!({"logit_bias": {"x": 1}})), "logit_bias"),
        (chat(SMOL, "hi", json!({"stop": ["a", "b", "c", "d", "e"]})), "stop"),
        (chat(SMOL, "hi", json!({"n": 9})), "n"),
        (chat(SMOL, "hi", json!({"top_logprobs": 2})), "top_logprobs"),
        (chat(SMOL, "hi", json!({"tool_choice": "required"})), "tool_choice"),
        (json!({"model": SMOL, "messages": []}), "messages"),
        (json!({"model": SMOL}), "messages"),
        (json!({"model": SMOL, "messages": [{"role": "robot", "content": "x"}]}), "messages[0].role"),
        (json!({"model": SMOL, "messages": [{"role": "user", "content": 42}]}), "messages[0].content"),
    ];
    for (body, param) in cases {
        let (status, v) = post(&url, "/v1/chat/completions", body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(error_of(&v)["param"], param, "{body}: {v}");
    }
    let client = reqwest::Client::new();
    for (ctype, raw, status) in [("application/json", "{not json", 400), ("text/plain", "{}", 415)] {
        let url = format!("{url}/v1/chat/completions");
        let res = client.post(url).header("content-type", ctype).body(raw).send().await.unwrap();
        assert_eq!(res.status(), status, "{ctype} {raw}");
        error_of(&res.json().await.unwrap());
    }
    let res = client.get(format!("{url}/v1/nothing-here")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    error_of(&res.json().await.unwrap());
    let res = client.get(format!("{url}/v1/chat/completions")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    error_of(&res.json().await.unwrap());
}

#[tokio::test]
async fn models_list_and_get() {
    let url = serve(shared()).await;
    let v: Value = reqwest::get(format!("{url}/v1/models")).await.unwrap().json().await.unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&SMOL) && ids.contains(&GEMMA), "{ids:?}");
    let m: Value = reqwest::get(format!("{url}/v1/models/{GEMMA}")).await.unwrap().json().await.unwrap();
    assert_eq!(m["object"], "model");
    assert_eq!(m["meta"]["architecture"], "gemma3");
    assert_eq!(m["meta"]["quantization"], "Q4_K_M");
    assert_eq!(m["meta"]["chat_template"], "builtin:gemma");
    let m: Value = reqwest::get(format!("{url}/v1/models/smollm2")).await.unwrap().json().await.unwrap();
    assert_eq!(m["id"], SMOL, "aliases resolve");
    assert_eq!(m["meta"]["chat_template"], "gguf");
}

#[tokio::test]
async fn gemma_without_template_chats_with_builtin_template() {
    let url = serve(shared()).await;
    let (status, v) =
        post(&url, "/v1/chat/completions", chat(GEMMA, "Write one word.", json!({"temperature": 0, "max_tokens": 8})))
            .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], GEMMA);
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() >= 1);
    let (status, v) = post(
        &url,
        "/v1/completions",
        json!({"model": GEMMA, "prompt": "Paris is the capital of", "max_tokens": 6, "temperature": 0}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["choices"][0]["text"].as_str().unwrap().contains("France"), "{v}");
}

#[tokio::test]
async fn default_model_is_used_when_model_is_omitted() {
    let url = serve(shared()).await;
    let (status, v) = post(&url, "/v1/completions", json!({"prompt": "Hello", "max_tokens": 2})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], SMOL);
}

#[tokio::test]
async fn echo_and_token_prompts() {
    let url = serve(shared()).await;
    let (_, v) = post(
        &url,
        "/v1/completions",
        json!({"model": SMOL, "prompt": "1, 2, 3,", "max_tokens": 2, "temperature": 0, "echo": true}),
    )
    .await;
    assert!(v["choices"][0]["text"].as_str().unwrap().starts_with("1, 2, 3,"), "{v}");
    let (status, v) =
        post(&url, "/v1/completions", json!({"model": SMOL, "prompt": [1000, 1001, 1002], "max_tokens": 2})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    let (status, v) = post(&url, "/v1/completions", json!({"model": SMOL, "prompt": [99999999]})).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(error_of(&v)["param"], "prompt");
}
