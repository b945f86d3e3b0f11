//! `POST /models/load`, `POST /models/unload`, `GET /models/loaded`: which models are in memory.

use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;
use crate::validate;
use axum::extract::State;
use axum::Json;
use hearth_engine::ModelKind;
use hearth_protocol::openai::{LoadedModel, LoadedModels, ModelLifecycleRequest};
use std::sync::atomic::Ordering;

/// Loads a model (unloading least recently used idle ones if limits require).
///
/// # Errors
/// 404 unknown model, 503 no room, 500 when the file does not load.
pub async fn load(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<ModelLifecycleRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let keep_alive = validate::keep_alive(req.keep_alive.as_ref())?;
    let h = app.models.acquire(&req.model, None, keep_alive).await?;
    Ok(Json(serde_json::json!({
        "model": h.info.id,
        "loaded": true,
        "memory_bytes": h.memory_bytes(),
        "load_seconds": h.load_seconds,
    })))
}

/// Unloads a model that has no running requests.
///
/// # Errors
/// 404 unknown model, 409 while it has running requests.
pub async fn unload(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<ModelLifecycleRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = app.models.resolve(&req.model)?.id.clone();
    let was_loaded = app.models.unload(&id).await?;
    Ok(Json(serde_json::json!({ "model": id, "unloaded": was_loaded })))
}

/// The loaded models with memory, last use and activity.
pub async fn loaded(State(app): State<AppState>) -> Json<LoadedModels> {
    let data: Vec<LoadedModel> = app
        .models
        .resident()
        .into_iter()
        .map(|r| LoadedModel {
            id: r.handle.info.id.clone(),
            kind: match r.handle.info.kind {
                ModelKind::Causal => "causal".into(),
                ModelKind::Embedding => "embedding".into(),
            },
            memory_bytes: r.memory_bytes,
            last_used: r.last_used.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            expires_in: r.expires_in.map(|d| d.as_secs_f64()),
            active_requests: r.handle.stats.active.load(Ordering::Relaxed),
            waiting_requests: r.handle.stats.waiting.load(Ordering::Relaxed),
            load_seconds: r.handle.load_seconds,
        })
        .collect();
    let memory_bytes = data.iter().map(|m| m.memory_bytes).sum();
    Json(LoadedModels { object: "list".into(), data, memory_bytes })
}
