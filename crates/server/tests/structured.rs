//! Structured output against the real model: `response_format` json_object / json_schema
//! (strict) and the `grammar` extension, in chat and completions, streamed and not. The answer
//! is valid because decoding is constrained, so even the 135M test model gets it right.

mod common;

use common::*;
use serde_json::{json, Value};

fn person_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "city": {"enum": ["Paris", "Rome", "Oslo"]},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3}
        },
        "required": ["name", "age", "city", "tags"]
    })
}

/// Checks `v` against [`person_schema`] with `strict` (no other keys).
fn assert_person(v: &Value) {
    let o = v.as_object().unwrap_or_else(|| panic!("not an object: {v}"));
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["age", "city", "name", "tags"], "{v}");
    assert!(o["name"].as_str().is_some_and(|n| n.chars().count() <= 40), "{v}");
    assert!(o["age"].as_u64().is_some_and(|a| a <= 150), "{v}");
    assert!(["Paris", "Rome", "Oslo"].contains(&o["city"].as_str().unwrap_or("")), "{v}");
    let tags = o["tags"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert!(tags.len() <= 3 && tags.iter().all(|t| t.as_str().is_some_and(|t| t.chars().count() <= 12)), "{v}");
}

fn json_schema(strict: bool) -> Value {
    json!({"type": "json_schema", "json_schema": {"name": "person", "strict": strict, "schema": person_schema()}})
}

fn stream_text(raw: &str) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut finish = Vec::new();
    for frame in raw.split("\n\n").filter(|f| f.starts_with("data: {")) {
        let v: Value = serde_json::from_str(&frame["data: ".len()..]).unwrap();
        for c in v["choices"].as_array().into_iter().flatten() {
            text.push_str(c["delta"]["content"].as_str().or(c["text"].as_str()).unwrap_or(""));
            if let Some(f) = c["finish_reason"].as_str() {
                finish.push(f.to_string());
            }
        }
    }
    (text, finish)
}

#[tokio::test]
async fn chat_json_schema_strict_answers_validate_and_stop_when_the_value_closes() {
    let url = serve(shared()).await;
    for seed in [1, 2, 3] {
        let req = chat(
            SMOL,
            "Describe a person who lives in a city.",
            json!({"response_format": json_schema(true), "seed": seed, "temperature": 0.9, "max_tokens": 200}),
        );
        let (status, body) = post(&url, "/v1/chat/completions", req).await;
        assert_eq!(status, 200, "{body}");
        let content = body["choices"][0]["message"]["content"].as_str().unwrap();
        assert_person(&serde_json::from_str(content).unwrap_or_else(|e| panic!("{e}: {content}")));
        assert_eq!(body["choices"][0]["finish_reason"], "stop", "{body}");
    }
}

#[tokio::test]
async fn streamed_json_object_and_completions_are_constrained_too() {
    let url = serve(shared()).await;
    let req = chat(
        SMOL,
        "Reply with a JSON object with a key \"answer\": the capital of France.",
        json!({"response_format": {"type": "json_object"}, "stream": true, "max_tokens": 300, "seed": 4, "temperature": 0, "repeat_penalty": 1.3}),
    );
    let (status, _, raw) = post_raw(&url, "/v1/chat/completions", req).await;
    assert_eq!(status, 200, "{raw}");
    let (text, finish) = stream_text(&raw);
    assert!(serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{e}: {text}")).is_object(), "{text}");
    assert_eq!(finish, ["stop"]);
    let req = json!({"model": SMOL, "prompt": "A person:", "max_tokens": 200, "seed": 5, "response_format": json_schema(true)});
    let (status, body) = post(&url, "/v1/completions", req).await;
    assert_eq!(status, 200, "{body}");
    assert_person(&serde_json::from_str(body["choices"][0]["text"].as_str().unwrap()).unwrap());
    let req = json!({"model": SMOL, "prompt": "A person:", "max_tokens": 200, "seed": 6, "stream": true, "response_format": json_schema(true)});
    let (_, _, raw) = post_raw(&url, "/v1/completions", req).await;
    assert_person(&serde_json::from_str(&stream_text(&raw).0).unwrap());
}

#[tokio::test]
async fn a_raw_gbnf_grammar_is_followed() {
    let url = serve(shared()).await;
    let g = "root ::= (\"yes\" | \"no\") \", because \" [a-z ]{1,20} \".\"";
    for seed in [7, 8] {
        let req = chat(SMOL, "Is the sky blue?", json!({"grammar": g, "seed": seed, "max_tokens": 64}));
        let (status, body) = post(&url, "/v1/chat/completions", req).await;
        assert_eq!(status, 200, "{body}");
        let c = body["choices"][0]["message"]["content"].as_str().unwrap();
        assert!((c.starts_with("yes, because ") || c.starts_with("no, because ")) && c.ends_with('.'), "{c:?}");
    }
}

#[tokio::test]
async fn constraints_that_cannot_be_honoured_are_a_400_naming_why() {
    let url = serve(shared()).await;
    let cases = [
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "format": "email"}}}}),
            "response_format",
            "`format`",
        ),
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "patternProperties": {}}}}}),
            "response_format",
            "`patternProperties`",
        ),
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "number", "minimum": 1}}}}),
            "response_format",
            "`minimum`",
        ),
        (json!({"response_format": {"type": "yaml"}}), "response_format.type", "json_schema"),
        (json!({"grammar": "root ::= \"unterminated"}), "grammar", "grammar"),
        (json!({"grammar": "start ::= \"x\""}), "grammar", "root"),
        (json!({"response_format": {"type": "json_object"}, "ignore_eos": true}), "ignore_eos", "ignore_eos"),
    ];
    for (extra, param, says) in cases {
        let (status, body) = post(&url, "/v1/chat/completions", chat(SMOL, "hi", extra.clone())).await;
        assert_eq!(status, 400, "{extra} -> {body}");
        let e = error_of(&body);
        assert_eq!(e["param"], param, "{extra} -> {body}");
        assert!(e["message"].as_str().unwrap().contains(says), "{extra} -> {body}");
    }
    // The server is fine afterwards.
    let (status, _) = post(&url, "/v1/chat/completions", chat(SMOL, "hi", json!({"max_tokens": 4}))).await;
    assert_eq!(status, 200);
}
