//! `POST /v1/rerank` (and `/rerank`): score documents against a query with a cross-encoder.

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::middleware::Summary;
use crate::pipeline::embed::{only_model_of_kind, run};
use crate::pipeline::generate;
use crate::services::state::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use hearth_engine::embed::sigmoid;
use hearth_engine::error::Role;
use hearth_engine::{EmbedInput, EmbedRequest, EngineError, ModelKind, Pooling};
use hearth_protocol::openai::ErrorBody;
use hearth_protocol::rerank::{RerankDocumentText, RerankRequest, RerankResponse, RerankResult, RerankUsage};

/// Most documents per request.
const MAX_DOCUMENTS: usize = 2048;

/// Scores every document and returns them most relevant first.
///
/// # Errors
/// 400 for a missing query or documents, a bad `top_n`, or a model that is not a reranker.
#[utoipa::path(post, path = "/v1/rerank", tag = "rerank", request_body = RerankRequest, responses((status = 200, description = "Documents by relevance", body = RerankResponse), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown model", body = ErrorBody), (status = 429, description = "Too many requests or over the key's rate limit", body = ErrorBody), (status = 503, description = "Overloaded, no room, or shutting down", body = ErrorBody)))]
pub async fn rerank(
    State(app): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<RerankRequest>,
) -> Result<Response, ApiError> {
    let who = crate::services::owner::Principal::of(caller.as_ref().map(|c| &c.0));
    let scope = who.models(&app.models);
    let name = only_model_of_kind(&scope, &req.model, true)?;
    let info = scope.resolve(&name)?;
    if info.pooling != Some(Pooling::Rank) {
        return Err(EngineError::wrong_kind(Role::Embedder, Role::Reranker).into());
    }
    let query = req.query.filter(|q| !q.is_empty()).ok_or_else(|| ApiError::invalid("query", "query is required"))?;
    let docs: Vec<String> = req.documents.unwrap_or_default().iter().map(|d| d.text().to_string()).collect();
    if docs.is_empty() || docs.len() > MAX_DOCUMENTS {
        let msg = format!("documents must hold 1 to {MAX_DOCUMENTS} documents, got {}", docs.len());
        return Err(ApiError::invalid("documents", msg));
    }
    let top_n = match req.top_n {
        None => docs.len(),
        Some(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX).min(docs.len()),
        Some(n) => return Err(ApiError::invalid("top_n", format!("top_n must be at least 1, got {n}"))),
    };
    let keep_alive = crate::pipeline::validate::keep_alive(req.keep_alive.as_ref())?;
    let admission = generate::admit(&app, caller)?;
    let handle = scope.acquire(&name, Some(ModelKind::Embedding), keep_alive).await?;
    // One copy of the query for every pair (a long query and many documents would otherwise
    // multiply it).
    let query: std::sync::Arc<str> = query.into();
    let inputs = docs.iter().map(|d| EmbedInput::Pair { query: query.clone(), document: d.clone() }).collect();
    let embed_req = EmbedRequest { inputs, truncate: req.truncate.unwrap_or(true) };
    let out = run(&app, &handle, embed_req, &admission).await?;
    let mut results: Vec<RerankResult> = out
        .vectors
        .iter()
        .enumerate()
        .map(|(index, v)| RerankResult {
            index,
            relevance_score: sigmoid(v.first().copied().unwrap_or(f32::NEG_INFINITY)),
            document: None,
        })
        .collect();
    results.sort_by(|a, b| b.relevance_score.total_cmp(&a.relevance_score).then(a.index.cmp(&b.index)));
    results.truncate(top_n);
    if req.return_documents.unwrap_or(false) {
        for r in &mut results {
            r.document = Some(RerankDocumentText { text: docs[r.index].clone() });
        }
    }
    let usage = RerankUsage { prompt_tokens: out.prompt_tokens, total_tokens: out.prompt_tokens };
    let model = handle.info.id.to_string();
    let summary = Summary { prompt_tokens: out.prompt_tokens, ..Summary::default() };
    let body = RerankResponse { id: crate::http::ids::new_id("rerank"), model: model.clone(), results, usage };
    Ok(generate::answer(model, summary, body))
}
