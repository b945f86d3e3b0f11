//! `GET /v1/models`, `GET /v1/models/{id}` and `GET /health`.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use hearth_engine::{ModelInfo, ModelManager};
use hearth_protocol::openai::{ModelList, ModelObject};
use std::sync::atomic::Ordering;

fn object(models: &ModelManager, m: &ModelInfo) -> ModelObject {
    let mut meta = m.meta_json();
    let loaded = models.loaded().iter().any(|h| h.info.id == m.id);
    meta["loaded"] = loaded.into();
    meta["aliases"] = models.registry().aliases_of(&m.id).into();
    ModelObject {
        id: m.id.clone(),
        object: "model".into(),
        created: m.created,
        owned_by: "hearth".into(),
        meta: Some(meta),
    }
}

/// Lists every model in the registry.
pub async fn list_models(State(app): State<AppState>) -> Json<ModelList> {
    let data = app.models.registry().models().map(|m| object(&app.models, m)).collect();
    Json(ModelList { object: "list".into(), data })
}

/// One model by id or alias.
///
/// # Errors
/// 404 `model_not_found`.
pub async fn get_model(State(app): State<AppState>, Path(id): Path<String>) -> Result<Json<ModelObject>, ApiError> {
    let m = app.models.registry().resolve(&id)?;
    Ok(Json(object(&app.models, m)))
}

/// Liveness plus the state of each loaded model's worker.
pub async fn health(State(app): State<AppState>) -> Json<serde_json::Value> {
    let models: Vec<serde_json::Value> = app
        .models
        .loaded()
        .iter()
        .map(|h| {
            serde_json::json!({
                "id": h.info.id,
                "active_sequences": h.stats.active.load(Ordering::Relaxed),
                "waiting": h.stats.waiting.load(Ordering::Relaxed),
                "finished": h.stats.finished.load(Ordering::Relaxed),
                "cancelled": h.stats.cancelled.load(Ordering::Relaxed),
                "slots": h.loaded.n_slots,
                "n_ctx": h.loaded.n_ctx,
            })
        })
        .collect();
    Json(serde_json::json!({ "status": "ok", "models": models }))
}
