//! `/v1/embeddings`, `/v1/rerank`, `/tokenize` and `/detokenize` against the real MiniLM
//! GGUFs and the stand-in reranker (reference values are checked by tests/python).

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

async fn embed(url: &str, body: Value) -> Vec<Vec<f32>> {
    let (status, v) = post(url, "/v1/embeddings", body).await;
    assert_eq!(status, 200, "{v}");
    let data = v["data"].as_array().expect("data");
    data.iter()
        .enumerate()
        .map(|(i, d)| {
            assert_eq!(d["index"], i, "in input order");
            assert_eq!(d["object"], "embedding");
            floats(&d["embedding"])
        })
        .collect()
}

#[tokio::test]
async fn embeddings_are_normalised_ordered_and_meaningful() {
    let url = serve(shared()).await;
    let input = ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply today."];
    let (status, v) = post(&url, "/v1/embeddings", json!({"model": MINILM, "input": input})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], MINILM);
    let prompt = v["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(v["usage"]["total_tokens"].as_u64().unwrap(), prompt);
    // [CLS] + words and punctuation + [SEP] for each sentence.
    assert_eq!(prompt, 8 + 11 + 9, "{v}");
    let e: Vec<Vec<f32>> = v["data"].as_array().unwrap().iter().map(|d| floats(&d["embedding"])).collect();
    for x in &e {
        assert_eq!(x.len(), 384);
        assert!((dot(x, x) - 1.0).abs() < 1e-4);
    }
    assert!(dot(&e[0], &e[1]) > 0.5 && dot(&e[0], &e[2]) < 0.2, "{} {}", dot(&e[0], &e[1]), dot(&e[0], &e[2]));
    let q8 = embed(&url, json!({"model": MINILM_Q8, "input": input[0]})).await;
    assert!(dot(&q8[0], &e[0]) > 0.99, "q8_0 agrees with f16");
}

#[tokio::test]
async fn batching_does_not_change_an_embedding() {
    let url = serve(shared()).await;
    let alone = embed(&url, json!({"model": MINILM, "input": "The quick brown fox jumps over the lazy dog."})).await;
    let mut many: Vec<String> =
        (0..40).map(|i| format!("Sentence number {i} is about {}.", "x ".repeat(i % 7))).collect();
    many.insert(17, "The quick brown fox jumps over the lazy dog.".into());
    let batch = embed(&url, json!({"model": MINILM, "input": many})).await;
    assert_eq!(batch.len(), 41);
    assert!(dot(&alone[0], &batch[17]) > 0.9999, "{}", dot(&alone[0], &batch[17]));
}

#[tokio::test]
async fn base64_tokens_dimensions_and_raw_vectors() {
    let url = serve(shared()).await;
    let text = "Hearth serves embeddings.";
    let float = embed(&url, json!({"model": MINILM, "input": text})).await.remove(0);
    let (status, v) =
        post(&url, "/v1/embeddings", json!({"model": MINILM, "input": [text], "encoding_format": "base64"})).await;
    assert_eq!(status, 200, "{v}");
    let bytes = base64::engine::general_purpose::STANDARD.decode(v["data"][0]["embedding"].as_str().unwrap()).unwrap();
    let decoded: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    // Other tests' inputs may share the decode call, which moves the last digits (see
    // batching_does_not_change_an_embedding); a wrong byte order would give garbage.
    assert_eq!(decoded.len(), float.len());
    assert!(dot(&decoded, &float) > 0.9999, "base64 is the little-endian f32 bytes");

    let (_, t) = post(&url, "/tokenize", json!({"model": MINILM, "content": text, "add_special": true})).await;
    let from_tokens = embed(&url, json!({"model": MINILM, "input": t["tokens"]})).await.remove(0);
    assert!(dot(&from_tokens, &float) > 0.9999, "token input = the same text");
    let lists = embed(&url, json!({"model": MINILM, "input": [t["tokens"], t["tokens"]]})).await;
    assert_eq!(lists.len(), 2);

    let short = embed(&url, json!({"model": MINILM, "input": text, "dimensions": 128})).await.remove(0);
    assert_eq!(short.len(), 128);
    assert!((dot(&short, &short) - 1.0).abs() < 1e-4, "re-normalised after cutting");
    let raw = embed(&url, json!({"model": MINILM, "input": text, "normalize": false})).await.remove(0);
    assert!((dot(&raw, &raw) - 1.0).abs() > 1e-2, "normalize: false gives the pooled vector");
}

#[tokio::test]
async fn bad_embedding_requests_are_openai_400s() {
    let url = serve(shared()).await;
    let cases = [
        (json!({"model": MINILM, "input": ""}), "input"),
        (json!({"model": MINILM, "input": []}), "input"),
        (json!({"model": MINILM, "input": ["ok", ""]}), "input"),
        (json!({"model": MINILM, "input": [[]]}), "input"),
        (json!({"model": MINILM}), "input"),
        (json!({"model": MINILM, "input": [-1]}), "input"),
        (json!({"model": MINILM, "input": [1, "a"]}), "input"),
        (json!({"model": MINILM, "input": [999999]}), "input"),
        (json!({"model": MINILM, "input": "a", "encoding_format": "int8"}), "encoding_format"),
        (json!({"model": MINILM, "input": "a", "dimensions": 0}), "dimensions"),
        (json!({"model": MINILM, "input": "a", "dimensions": 385}), "dimensions"),
        (json!({"model": SMOL, "input": "a"}), "model"),
        (json!({"model": RERANKER, "input": "a"}), "model"),
    ];
    for (body, param) in cases {
        let (status, v) = post(&url, "/v1/embeddings", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {v}");
        assert_eq!(error_of(&v)["param"], param, "{body} -> {v}");
    }
    let (status, v) = post(&url, "/v1/embeddings", json!({"model": "nope", "input": "a"})).await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = post(&url, "/v1/chat/completions", chat(MINILM, "hi", json!({}))).await;
    assert_eq!(status, 400, "{v}");
}

#[tokio::test]
async fn inputs_over_the_window_are_refused_unless_truncated() {
    let url = serve(shared()).await;
    let long = "word ".repeat(600);
    let (status, v) = post(&url, "/v1/embeddings", json!({"model": MINILM, "input": ["short", long]})).await;
    assert_eq!(status, 400, "{v}");
    let e = error_of(&v);
    assert_eq!(e["code"], "context_length_exceeded");
    assert!(e["message"].as_str().unwrap().contains("input 1 has 602 tokens"), "{v}");
    let (status, v) = post(&url, "/v1/embeddings", json!({"model": MINILM, "input": long, "truncate": true})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["usage"]["prompt_tokens"], 512);
}

#[tokio::test]
async fn rerank_sorts_cuts_and_returns_documents() {
    let url = serve(shared()).await;
    let docs = [
        "Paris is the capital of France.",
        "Bananas are yellow.",
        "The Eiffel tower is in Paris.",
        "Rust is a language.",
    ];
    for path in ["/v1/rerank", "/rerank"] {
        let body = json!({"model": RERANKER, "query": "What is the capital of France?", "documents": docs, "top_n": 3, "return_documents": true});
        let (status, v) = post(&url, path, body).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["model"], RERANKER);
        let r = v["results"].as_array().unwrap();
        assert_eq!(r.len(), 3);
        let scores: Vec<f64> = r.iter().map(|x| x["relevance_score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "sorted: {scores:?}");
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
        for x in r {
            let i = x["index"].as_u64().unwrap() as usize;
            assert_eq!(x["document"]["text"], docs[i]);
        }
        assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    }
    let (_, v) = post(&url, "/v1/rerank", json!({"query": "q", "documents": [{"text": "a"}, "b"]})).await;
    assert_eq!(v["results"].as_array().unwrap().len(), 2, "only reranker is the default; objects and strings: {v}");
    assert!(v["results"][0].get("document").is_none(), "documents only on request");
}

#[tokio::test]
async fn bad_rerank_requests_are_400s() {
    let url = serve(shared()).await;
    let cases = [
        (json!({"model": MINILM, "query": "q", "documents": ["a"]}), "model"),
        (json!({"model": SMOL, "query": "q", "documents": ["a"]}), "model"),
        (json!({"model": RERANKER, "documents": ["a"]}), "query"),
        (json!({"model": RERANKER, "query": "q", "documents": []}), "documents"),
        (json!({"model": RERANKER, "query": "q"}), "documents"),
        (json!({"model": RERANKER, "query": "q", "documents": ["a"], "top_n": 0}), "top_n"),
    ];
    for (body, param) in cases {
        let (status, v) = post(&url, "/v1/rerank", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {v}");
        assert_eq!(error_of(&v)["param"], param, "{body} -> {v}");
    }
}

#[tokio::test]
async fn tokenize_and_detokenize_any_model() {
    let url = serve(shared()).await;
    let (status, v) =
        post(&url, "/tokenize", json!({"model": SMOL, "content": "Hello world", "with_pieces": true})).await;
    assert_eq!(status, 200, "{v}");
    let toks = v["tokens"].as_array().unwrap();
    let text: String = toks.iter().map(|t| t["piece"].as_str().unwrap()).collect();
    assert_eq!(text, "Hello world");
    let ids: Vec<Value> = toks.iter().map(|t| t["id"].clone()).collect();
    let (status, v) = post(&url, "/detokenize", json!({"model": SMOL, "tokens": ids})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["content"], "Hello world");
    // The default model answers when none is named.
    let (_, v) = post(&url, "/tokenize", json!({"content": "Hello world"})).await;
    assert_eq!(v["tokens"].as_array().unwrap().len(), ids.len());

    let (_, v) = post(&url, "/tokenize", json!({"model": MINILM, "content": "hello world", "add_special": true})).await;
    assert_eq!(v["tokens"], json!([101, 7592, 2088, 102]), "[CLS] hello world [SEP]");
    let (status, v) = post(&url, "/detokenize", json!({"model": SMOL, "tokens": [99999999]})).await;
    assert_eq!((status, error_of(&v)["param"].clone()), (400, json!("tokens")));
    let (status, _) = post(&url, "/tokenize", json!({"model": SMOL})).await;
    assert_eq!(status, 400);
}
