//! What every embedding endpoint shares: running a request under the queue timeout and
//! charging its tokens, the model a request names (or the only one of its kind), and a search
//! query's embedding.

use crate::http::error::ApiError;
use crate::http::metrics::{self, metrics};
use crate::pipeline::generate;
use crate::services::owner::Principal;
use crate::services::retrieval::Rag;
use crate::services::state::AppState;
use hearth_engine::{EmbedInput, EmbedOutput, EmbedRequest, EngineError, ModelHandle, ModelKind, Pooling};

/// Runs an embedding request under the queue timeout.
pub async fn run(
    app: &AppState,
    handle: &ModelHandle,
    req: EmbedRequest,
    admission: &generate::Admission,
) -> Result<EmbedOutput, ApiError> {
    // Dropping the future on timeout drops the reply receiver; the worker skips the request.
    let inputs = req.inputs.len() as u64;
    let answer = tokio::time::timeout(app.limits.queue_timeout, handle.embed(req)).await;
    let out = answer.map_err(|_| ApiError::QueueTimeout)??;
    metrics().inc(metrics::EMBEDDING_INPUTS, &[("model", &handle.info.id)], inputs);
    if let Some(caller) = &admission.caller {
        caller.charge(u64::from(out.prompt_tokens));
    }
    Ok(out)
}

/// The model a request names, or the only embedding model (`rerank`: the only reranker) when it
/// names none.
pub fn only_model_of_kind(
    scope: &crate::services::owner::Scoped<'_>,
    name: &str,
    rerank: bool,
) -> Result<String, ApiError> {
    if !name.trim().is_empty() {
        return Ok(name.to_string());
    }
    let models = scope.list();
    let mut found =
        models.iter().filter(|m| m.kind == ModelKind::Embedding && (m.pooling == Some(Pooling::Rank)) == rerank);
    match (found.next(), found.next()) {
        (Some(m), None) => Ok(m.id.clone()),
        _ => Err(EngineError::NoDefaultModel.into()),
    }
}

/// The normalised embedding of `who`'s query (its tokens charged to them).
pub async fn embed_query(app: &AppState, rag: &Rag, who: &Principal, text: &str) -> Result<Vec<f32>, ApiError> {
    let handle = app.models.get_embedding(&rag.embedding_model).await?;
    let req = EmbedRequest { inputs: vec![EmbedInput::Text(text.to_string())], truncate: true };
    let out = handle.embed(req).await?;
    who.charge(u64::from(out.prompt_tokens));
    let mut v = out.vectors.into_iter().next().unwrap_or_default();
    hearth_engine::embed::l2_normalize(&mut v);
    Ok(v)
}
