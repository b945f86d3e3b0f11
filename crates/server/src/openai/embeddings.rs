//! `POST /v1/embeddings`: OpenAI's embeddings API over the embedding worker.

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::middleware::Summary;
use crate::pipeline::embed::{only_model_of_kind, run};
use crate::pipeline::generate;
use crate::pipeline::validate;
use crate::services::state::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use hearth_engine::embed::l2_normalize;
use hearth_engine::error::Role;
use hearth_engine::{EmbedInput, EmbedRequest, EngineError, ModelKind, Pooling};
use hearth_protocol::openai::ErrorBody;
use hearth_protocol::openai::{
    Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingVector,
};

/// OpenAI's limit on inputs per request.
const MAX_INPUTS: usize = 2048;

/// What the handler needs after validation.
struct Valid {
    req: EmbedRequest,
    base64: bool,
    dimensions: Option<usize>,
    normalize: bool,
}

/// Embeds the inputs, in order.
///
/// # Errors
/// 400 for empty or malformed input, a reranker or text model, too long inputs; 404 for an
/// unknown model; 429/503 when the server is saturated.
#[utoipa::path(post, path = "/v1/embeddings", tag = "openai", request_body = EmbeddingRequest, responses((status = 200, description = "Embeddings in input order", body = EmbeddingResponse), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown model", body = ErrorBody), (status = 429, description = "Too many requests or over the key's rate limit", body = ErrorBody), (status = 503, description = "Overloaded, no room, or shutting down", body = ErrorBody)))]
pub async fn embeddings(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<EmbeddingRequest>,
) -> Result<Response, ApiError> {
    let (body, summary) = create(&app, caller, req).await?;
    Ok(generate::answer(body.model.clone(), summary, body))
}

/// Embeds a request's inputs (for every protocol that embeds), with the log line's summary.
///
/// # Errors
/// As [`embeddings`].
pub async fn create(
    app: &AppState,
    caller: Option<Extension<Caller>>,
    req: EmbeddingRequest,
) -> Result<(EmbeddingResponse, Summary), ApiError> {
    let app = app.clone();
    let who = crate::services::owner::Principal::of(caller.as_ref().map(|c| &c.0));
    let scope = who.models(&app.models);
    let name = only_model_of_kind(&scope, &req.model, false)?;
    let keep_alive = validate::keep_alive(req.keep_alive.as_ref())?;
    let valid = check(req)?;
    let admission = generate::admit(&app, caller)?;
    let handle = scope.acquire(&name, Some(ModelKind::Embedding), keep_alive).await?;
    if handle.loaded.pooling == Some(Pooling::Rank) {
        return Err(EngineError::wrong_kind(Role::Reranker, Role::Embedder).into());
    }
    let dims = match valid.dimensions {
        Some(d) if d > handle.loaded.n_embd => {
            let msg = format!("dimensions must be at most {} for model `{}`", handle.loaded.n_embd, handle.info.id);
            return Err(ApiError::invalid("dimensions", msg));
        }
        d => d.unwrap_or(handle.loaded.n_embd),
    };
    let out = run(&app, &handle, valid.req, &admission).await?;
    let data = out
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, mut v)| {
            v.truncate(dims);
            if valid.normalize {
                l2_normalize(&mut v);
            }
            let embedding =
                if valid.base64 { EmbeddingVector::Base64(base64_f32(&v)) } else { EmbeddingVector::Float(v) };
            Embedding { object: "embedding".into(), index, embedding }
        })
        .collect();
    let usage = EmbeddingUsage { prompt_tokens: out.prompt_tokens, total_tokens: out.prompt_tokens };
    let model = handle.info.id.to_string();
    let summary = Summary { prompt_tokens: out.prompt_tokens, ..Summary::default() };
    Ok((EmbeddingResponse { object: "list".into(), data, model, usage }, summary))
}

fn check(req: EmbeddingRequest) -> Result<Valid, ApiError> {
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            let msg = format!("encoding_format must be `float` or `base64`, got `{other}`");
            return Err(ApiError::invalid("encoding_format", msg));
        }
    };
    let dimensions = match req.dimensions {
        None => None,
        Some(d) if d >= 1 => Some(usize::try_from(d).unwrap_or(usize::MAX)),
        Some(d) => return Err(ApiError::invalid("dimensions", format!("dimensions must be at least 1, got {d}"))),
    };
    let normalize = req.normalize.unwrap_or(true);
    let engine_req = EmbedRequest { inputs: inputs(req.input)?, truncate: req.truncate.unwrap_or(false) };
    Ok(Valid { req: engine_req, base64, dimensions, normalize })
}

fn inputs(input: Option<EmbeddingInput>) -> Result<Vec<EmbedInput>, ApiError> {
    let text = |i: usize, t: String| {
        if t.is_empty() {
            return Err(ApiError::invalid("input", format!("input {i} is an empty string")));
        }
        Ok(EmbedInput::Text(t))
    };
    let tokens = |i: usize, t: Vec<i64>| {
        if t.is_empty() {
            return Err(ApiError::invalid("input", format!("input {i} has no tokens")));
        }
        Ok(EmbedInput::Tokens(validate::ids("input", &t)?))
    };
    let out: Vec<EmbedInput> = match input.ok_or_else(|| ApiError::invalid("input", "input is required"))? {
        EmbeddingInput::Text(t) => vec![text(0, t)?],
        EmbeddingInput::Texts(ts) => ts.into_iter().enumerate().map(|(i, t)| text(i, t)).collect::<Result<_, _>>()?,
        EmbeddingInput::Tokens(t) => vec![tokens(0, t)?],
        EmbeddingInput::TokenLists(ls) => {
            ls.into_iter().enumerate().map(|(i, t)| tokens(i, t)).collect::<Result<_, _>>()?
        }
    };
    if out.is_empty() {
        return Err(ApiError::invalid("input", "input must not be empty"));
    }
    if out.len() > MAX_INPUTS {
        return Err(ApiError::invalid("input", format!("at most {MAX_INPUTS} inputs per request, got {}", out.len())));
    }
    Ok(out)
}

/// Base64 (standard alphabet, padded) of the little-endian bytes of `v`, as OpenAI sends.
fn base64_f32(v: &[f32]) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_little_endian_f32() {
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
    }

    #[test]
    fn inputs_of_every_form() {
        let t = |s: &str| serde_json::from_str::<EmbeddingInput>(s).unwrap();
        assert_eq!(inputs(Some(t(r#""a""#))).unwrap(), [EmbedInput::Text("a".into())]);
        assert_eq!(inputs(Some(t(r#"["a","b"]"#))).unwrap().len(), 2);
        assert_eq!(inputs(Some(t("[1,2]"))).unwrap(), [EmbedInput::Tokens(vec![1, 2])]);
        assert_eq!(inputs(Some(t("[[1],[2,3]]"))).unwrap().len(), 2);
        for bad in [r#""""#, "[]", r#"["a",""]"#, "[[]]", "[-1]"] {
            assert!(inputs(Some(t(bad))).is_err(), "{bad}");
        }
        assert!(inputs(None).is_err());
    }
}
