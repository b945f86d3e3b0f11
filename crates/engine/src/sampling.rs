//! Sampling parameters, validated.

use crate::error::{EngineError, Invalid};
use std::collections::HashMap;

/// Most tokens one `logit_bias` may name.
const MAX_BIASES: usize = 1024;

/// How the next token is chosen. Built only through [`SamplingParams::validate`] or
/// [`SamplingParams::greedy`], so every field is in range when it reaches a backend.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplingParams {
    /// Softmax temperature; 0 = greedy.
    pub temperature: f32,
    /// Nucleus threshold in (0, 1]; 1 disables it.
    pub top_p: f32,
    /// Keep the k most likely tokens; 0 disables it.
    pub top_k: u32,
    /// Minimum probability relative to the most likely token; 0 disables it.
    pub min_p: f32,
    /// Multiplicative repetition penalty; 1 disables it.
    pub repeat_penalty: f32,
    /// Tokens looked back for the penalties.
    pub penalty_last_n: u32,
    /// Additive presence penalty in [-2, 2].
    pub presence_penalty: f32,
    /// Additive frequency penalty in [-2, 2].
    pub frequency_penalty: f32,
    /// RNG seed; the same seed and request give the same text.
    pub seed: u32,
    /// Per-token logit biases.
    pub logit_bias: Vec<(u32, f32)>,
    /// Only tokens this grammar allows are sampled (structured output); `None` costs nothing.
    pub grammar: Option<crate::constraint::Grammar>,
}

/// Raw sampling fields as a client sent them; `None` takes the server default.
#[derive(Debug, Clone, Default)]
pub struct SamplingInput {
    /// See [`SamplingParams::temperature`].
    pub temperature: Option<f32>,
    /// See [`SamplingParams::top_p`].
    pub top_p: Option<f32>,
    /// See [`SamplingParams::top_k`].
    pub top_k: Option<i32>,
    /// See [`SamplingParams::min_p`].
    pub min_p: Option<f32>,
    /// See [`SamplingParams::repeat_penalty`].
    pub repeat_penalty: Option<f32>,
    /// See [`SamplingParams::presence_penalty`].
    pub presence_penalty: Option<f32>,
    /// See [`SamplingParams::frequency_penalty`].
    pub frequency_penalty: Option<f32>,
    /// Tokens the penalties look back over (`repeat_last_n`): -1 the whole context, 0 none;
    /// [`DEFAULT_PENALTY_LAST_N`] when absent.
    pub penalty_last_n: Option<i64>,
    /// See [`SamplingParams::seed`]; a random seed when absent.
    pub seed: Option<i64>,
    /// Token id (decimal string) to bias.
    pub logit_bias: Option<HashMap<String, f32>>,
}

/// Tokens the penalties look back over when a request does not say (llama.cpp's and Ollama's
/// default).
pub const DEFAULT_PENALTY_LAST_N: u32 = 64;

/// `repeat_last_n` as tokens: -1 is the whole context (the backend caps it at the context's
/// size), 0 turns the penalties off.
fn penalty_last_n(v: Option<i64>) -> Result<u32, EngineError> {
    match v {
        None => Ok(DEFAULT_PENALTY_LAST_N),
        Some(-1) => Ok(u32::MAX),
        Some(n) if n >= 0 => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
        Some(n) => Err(EngineError::invalid(
            "repeat_last_n",
            Invalid::OutOfRange { name: "repeat_last_n", lo: -1.0, hi: u32::MAX as f32, got: n as f32 },
        )),
    }
}

/// Server-wide defaults for fields a request leaves out.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingDefaults {
    /// Default temperature.
    pub temperature: f32,
    /// Default top_p.
    pub top_p: f32,
    /// Default top_k.
    pub top_k: u32,
    /// Default min_p.
    pub min_p: f32,
    /// Default repeat penalty.
    pub repeat_penalty: f32,
}

impl Default for SamplingDefaults {
    fn default() -> Self {
        Self { temperature: 0.8, top_p: 0.95, top_k: 40, min_p: 0.05, repeat_penalty: 1.0 }
    }
}

fn in_range(name: &'static str, v: f32, lo: f32, hi: f32) -> Result<f32, EngineError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(EngineError::invalid(name, Invalid::OutOfRange { name, lo, hi, got: v }))
    }
}

/// Maps a client seed onto llama.cpp's u32 seeds, avoiding u32::MAX ("random" to llama.cpp).
fn seed_from(seed: Option<i64>) -> u32 {
    match seed {
        Some(s) => (s.rem_euclid(u32::MAX as i64)) as u32,
        None => random_seed(),
    }
}

fn random_seed() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    (h.finish() % u32::MAX as u64) as u32
}

fn parse_logit_bias(map: HashMap<String, f32>) -> Result<Vec<(u32, f32)>, EngineError> {
    if map.len() > MAX_BIASES {
        return Err(EngineError::invalid("logit_bias", Invalid::TooManyBiases(MAX_BIASES)));
    }
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let tok: u32 = k.trim().parse().map_err(|_| EngineError::invalid("logit_bias", Invalid::BiasKey(k.clone())))?;
        out.push((tok, in_range("logit_bias", v, -100.0, 100.0)?));
    }
    out.sort_by_key(|(t, _)| *t);
    Ok(out)
}

impl SamplingParams {
    /// Greedy decoding with no penalties.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            penalty_last_n: DEFAULT_PENALTY_LAST_N,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: 0,
            logit_bias: Vec::new(),
            grammar: None,
        }
    }

    /// Checks every field against OpenAI's documented range and fills in defaults.
    ///
    /// # Errors
    /// [`EngineError::InvalidParam`] naming the first field out of range.
    pub fn validate(input: SamplingInput, d: &SamplingDefaults) -> Result<Self, EngineError> {
        let top_k = match input.top_k {
            None => d.top_k,
            Some(k) if k >= 0 => k as u32,
            Some(k) => return Err(EngineError::invalid("top_k", Invalid::NegativeTopK(k))),
        };
        let top_p = in_range("top_p", input.top_p.unwrap_or(d.top_p), 0.0, 1.0)?;
        Ok(Self {
            temperature: in_range("temperature", input.temperature.unwrap_or(d.temperature), 0.0, 2.0)?,
            top_p: if top_p == 0.0 { f32::MIN_POSITIVE } else { top_p },
            top_k,
            min_p: in_range("min_p", input.min_p.unwrap_or(d.min_p), 0.0, 1.0)?,
            repeat_penalty: in_range("repeat_penalty", input.repeat_penalty.unwrap_or(d.repeat_penalty), 0.01, 10.0)?,
            penalty_last_n: penalty_last_n(input.penalty_last_n)?,
            presence_penalty: in_range("presence_penalty", input.presence_penalty.unwrap_or(0.0), -2.0, 2.0)?,
            frequency_penalty: in_range("frequency_penalty", input.frequency_penalty.unwrap_or(0.0), -2.0, 2.0)?,
            seed: seed_from(input.seed),
            logit_bias: parse_logit_bias(input.logit_bias.unwrap_or_default())?,
            grammar: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param_of(r: Result<SamplingParams, EngineError>) -> String {
        match r {
            Err(EngineError::InvalidParam { param, .. }) => param,
            other => panic!("expected InvalidParam, got {other:?}"),
        }
    }

    #[test]
    fn defaults_fill_missing_fields() {
        let p = SamplingParams::validate(
            SamplingInput { seed: Some(7), ..Default::default() },
            &SamplingDefaults::default(),
        )
        .unwrap();
        assert_eq!(p.temperature, 0.8);
        assert_eq!(p.seed, 7);
    }

    #[test]
    fn out_of_range_fields_name_the_param() {
        let d = SamplingDefaults::default();
        let t = SamplingInput { temperature: Some(2.5), ..Default::default() };
        assert_eq!(param_of(SamplingParams::validate(t, &d)), "temperature");
        let p = SamplingInput { top_p: Some(-0.1), ..Default::default() };
        assert_eq!(param_of(SamplingParams::validate(p, &d)), "top_p");
        let k = SamplingInput { top_k: Some(-1), ..Default::default() };
        assert_eq!(param_of(SamplingParams::validate(k, &d)), "top_k");
        let f = SamplingInput { frequency_penalty: Some(3.0), ..Default::default() };
        assert_eq!(param_of(SamplingParams::validate(f, &d)), "frequency_penalty");
        let b = SamplingInput { logit_bias: Some([("abc".to_string(), 1.0)].into()), ..Default::default() };
        assert_eq!(param_of(SamplingParams::validate(b, &d)), "logit_bias");
        let b = SamplingInput { logit_bias: Some([("5".to_string(), 101.0)].into()), ..Default::default() };
        assert_eq!(param_of(SamplingParams::validate(b, &d)), "logit_bias");
        let n = SamplingInput { penalty_last_n: Some(-2), ..Default::default() };
        assert_eq!(param_of(SamplingParams::validate(n, &d)), "repeat_last_n");
    }

    #[test]
    fn repeat_last_n_is_the_penalties_window() {
        let d = SamplingDefaults::default();
        let of = |n| SamplingParams::validate(SamplingInput { penalty_last_n: n, ..Default::default() }, &d).unwrap();
        assert_eq!(of(None).penalty_last_n, DEFAULT_PENALTY_LAST_N);
        assert_eq!(of(Some(0)).penalty_last_n, 0);
        assert_eq!(of(Some(256)).penalty_last_n, 256);
        assert_eq!(of(Some(-1)).penalty_last_n, u32::MAX, "the whole context, capped by the backend");
    }

    #[test]
    fn seeds_never_map_to_llama_random_seed() {
        assert_ne!(seed_from(Some(u32::MAX as i64)), u32::MAX);
        assert_ne!(seed_from(Some(-1)), u32::MAX);
        assert_ne!(random_seed(), u32::MAX);
    }
}
