//! `GET /v1/models` and `GET /v1/models/{id}`.

use crate::http::error::ApiError;
use crate::services::owner::Principal;
use crate::services::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use hearth_engine::{ModelInfo, ModelManager};
use hearth_protocol::openai::ErrorBody;
use hearth_protocol::openai::{ModelList, ModelObject};

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
#[utoipa::path(get, path = "/v1/models", tag = "openai", responses((status = 200, description = "Every model in the models directory", body = ModelList), (status = 401, description = "Missing or wrong API key", body = ErrorBody)))]
pub async fn list_models(State(app): State<AppState>, who: Principal) -> Json<ModelList> {
    let scope = who.models(&app.models);
    let data = app.models.registry().models().filter(|m| scope.allows(&m.id)).map(|m| object(&app.models, m)).collect();
    Json(ModelList { object: "list".into(), data })
}

/// One model by id or alias.
///
/// # Errors
/// 404 `model_not_found`.
#[utoipa::path(get, path = "/v1/models/{id}", tag = "openai", params(("id" = String, Path, description = "Model id or alias")), responses((status = 200, description = "The model", body = ModelObject), (status = 404, description = "Unknown model", body = ErrorBody)))]
pub async fn get_model(
    State(app): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<ModelObject>, ApiError> {
    let m = app.models.registry().resolve(&id)?.clone();
    if !who.models(&app.models).allows(&m.id) {
        return Err(hearth_engine::EngineError::ModelNotFound { model: id }.into());
    }
    Ok(Json(object(&app.models, &m)))
}
