//! Log-probabilities on the OpenAI wire: the request fields checked, and the engine's
//! per-token reports in chat's and in legacy completions' shapes.

use crate::http::error::ApiError;
use hearth_engine::request::MAX_TOP_LOGPROBS;
use hearth_engine::TokenLogprob;
use serde_json::{json, Value};

/// Chat's `logprobs` and `top_logprobs`: how many alternatives to report, or `None` for no
/// report.
///
/// # Errors
/// A 400 naming `top_logprobs` when it is out of range or given without `logprobs`.
pub fn chat_request(logprobs: Option<bool>, top: Option<i64>) -> Result<Option<u32>, ApiError> {
    match (logprobs.unwrap_or(false), top) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(ApiError::invalid("top_logprobs", "top_logprobs needs `logprobs: true`")),
        (true, None) => Ok(Some(0)),
        (true, Some(k)) => range("top_logprobs", k).map(Some),
    }
}

/// Legacy completions' `logprobs` (an integer, or null).
///
/// # Errors
/// A 400 naming `logprobs` when it is not an integer in range.
pub fn completion_request(v: Option<&Value>) -> Result<Option<u32>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(k) => range("logprobs", k).map(Some),
            None => Err(ApiError::invalid("logprobs", "logprobs must be an integer")),
        },
    }
}

fn range(param: &str, k: i64) -> Result<u32, ApiError> {
    u32::try_from(k)
        .ok()
        .filter(|k| *k <= MAX_TOP_LOGPROBS)
        .ok_or_else(|| ApiError::invalid(param, format!("{param} must be between 0 and {MAX_TOP_LOGPROBS}, got {k}")))
}

/// A number JSON can carry (a token the model rules out has -inf; OpenAI reports -9999).
fn finite(l: f32) -> f64 {
    if l.is_finite() {
        f64::from(l)
    } else {
        -9999.0
    }
}

/// Chat's `logprobs` object for these tokens.
pub fn chat(tokens: &[TokenLogprob]) -> Value {
    let content: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let top: Vec<Value> = t
                .top
                .iter()
                .map(|a| json!({"token": a.token, "logprob": finite(a.logprob), "bytes": a.bytes}))
                .collect();
            json!({"token": t.token, "logprob": finite(t.logprob), "bytes": t.bytes, "top_logprobs": top})
        })
        .collect();
    json!({"content": content, "refusal": null})
}

/// Legacy completions' `logprobs` object; `offset` is where the first token's text starts in
/// the choice's text (after an echoed prompt, or in a stream so far).
pub fn completion(tokens: &[TokenLogprob], mut offset: usize) -> Value {
    let mut text_offset = Vec::with_capacity(tokens.len());
    for t in tokens {
        text_offset.push(offset);
        offset += t.token.len();
    }
    let top: Vec<Value> = tokens
        .iter()
        .map(|t| Value::Object(t.top.iter().map(|a| (a.token.clone(), json!(finite(a.logprob)))).collect()))
        .collect();
    json!({
        "tokens": tokens.iter().map(|t| t.token.as_str()).collect::<Vec<_>>(),
        "token_logprobs": tokens.iter().map(|t| finite(t.logprob)).collect::<Vec<_>>(),
        "top_logprobs": top,
        "text_offset": text_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_engine::TopLogprob;

    fn tok(t: &str, l: f32) -> TokenLogprob {
        let top = vec![TopLogprob { token: t.into(), bytes: t.as_bytes().to_vec(), logprob: l }];
        TokenLogprob { token: t.into(), bytes: t.as_bytes().to_vec(), logprob: l, top }
    }

    #[test]
    fn request_fields() {
        assert_eq!(chat_request(None, None).unwrap(), None);
        assert_eq!(chat_request(Some(true), None).unwrap(), Some(0));
        assert_eq!(chat_request(Some(true), Some(20)).unwrap(), Some(20));
        assert!(chat_request(Some(true), Some(21)).is_err());
        assert!(chat_request(Some(false), Some(2)).is_err());
        assert_eq!(completion_request(Some(&json!(3))).unwrap(), Some(3));
        assert!(completion_request(Some(&json!(-1))).is_err());
        assert!(completion_request(Some(&json!("x"))).is_err());
    }

    #[test]
    fn shapes() {
        let t = [tok("Hi", -0.5), tok(" there", f32::NEG_INFINITY)];
        let c = chat(&t);
        assert_eq!(c["content"][0]["bytes"], json!([72, 105]));
        assert_eq!(c["content"][1]["logprob"], json!(-9999.0));
        let l = completion(&t, 4);
        assert_eq!(l["text_offset"], json!([4, 6]));
        assert_eq!(l["top_logprobs"][0]["Hi"], json!(-0.5));
    }
}
