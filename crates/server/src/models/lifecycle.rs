//! `POST /models/load`, `POST /models/unload`, `GET /models/loaded`: which models are in memory.

use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::pipeline::validate;
use crate::services::owner::Principal;
use crate::services::state::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use hearth_engine::ModelKind;
use hearth_protocol::openai::ErrorBody;
use hearth_protocol::openai::{LoadedModel, LoadedModels, ModelLifecycleRequest, ModelLoaded, ModelUnloaded};
use std::sync::atomic::Ordering;

/// Loads a model (unloading least recently used idle ones if limits require).
///
/// # Errors
/// 404 unknown model, 503 no room, 500 when the file does not load.
#[utoipa::path(post, path = "/models/load", tag = "models", request_body = ModelLifecycleRequest, responses((status = 200, description = "Loaded", body = ModelLoaded), (status = 500, description = "The file did not load", body = ErrorBody), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown model", body = ErrorBody), (status = 429, description = "Too many requests or over the key's rate limit", body = ErrorBody), (status = 503, description = "Overloaded, no room, or shutting down", body = ErrorBody)))]
pub async fn load(
    State(app): State<AppState>,
    who: Principal,
    caller: Option<Extension<Caller>>,
    ApiJson(req): ApiJson<ModelLifecycleRequest>,
) -> Result<Json<ModelLoaded>, ApiError> {
    let keep_alive = validate::keep_alive(req.keep_alive.as_ref())?;
    let _admitted = crate::pipeline::generate::admit(&app, caller)?;
    let scope = who.models(&app.models);
    if who.sees_all() {
        // An admin loading a model on purpose ends its crash back-off.
        app.models.crashes().forgive(&scope.resolve(&req.model)?.id);
    }
    let h = scope.acquire(&req.model, None, keep_alive).await?;
    Ok(Json(ModelLoaded {
        model: h.info.id.clone(),
        loaded: true,
        memory_bytes: h.memory_bytes(),
        load_seconds: h.load_seconds,
    }))
}

/// Unloads a model that has no running requests.
///
/// # Errors
/// 404 unknown model, 409 while it has running requests.
#[utoipa::path(post, path = "/models/unload", tag = "models", request_body = ModelLifecycleRequest, responses((status = 200, description = "Unloaded (or was not loaded)", body = ModelUnloaded), (status = 409, description = "The model has running requests", body = ErrorBody), (status = 400, description = "Bad request", body = ErrorBody), (status = 401, description = "Missing or wrong API key", body = ErrorBody), (status = 404, description = "Unknown model", body = ErrorBody), (status = 429, description = "Too many requests or over the key's rate limit", body = ErrorBody), (status = 503, description = "Overloaded, no room, or shutting down", body = ErrorBody)))]
pub async fn unload(
    State(app): State<AppState>,
    who: Principal,
    ApiJson(req): ApiJson<ModelLifecycleRequest>,
) -> Result<Json<ModelUnloaded>, ApiError> {
    let id = who.models(&app.models).resolve(&req.model)?.id.clone();
    let was_loaded = app.models.unload(&id).await?;
    Ok(Json(ModelUnloaded { model: id, unloaded: was_loaded }))
}

/// The loaded models with memory, last use and activity.
#[utoipa::path(get, path = "/models/loaded", tag = "models", responses((status = 200, description = "Loaded models with memory, last use and activity", body = LoadedModels)))]
pub async fn loaded(State(app): State<AppState>, who: Principal) -> Json<LoadedModels> {
    let scope = who.models(&app.models);
    let crashes = app.models.crashes();
    let mut data: Vec<LoadedModel> = app
        .models
        .resident()
        .into_iter()
        .filter(|r| scope.allows(&r.handle.info.id))
        .map(|r| {
            let crashed = crashes.get(&r.handle.info.id).unwrap_or_default();
            let placed = &r.handle.loaded.placement;
            LoadedModel {
                id: r.handle.info.id.clone(),
                kind: kind_name(r.handle.info.kind),
                memory_bytes: r.memory_bytes,
                last_used: r.last_used.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                expires_in: r.expires_in.map(|d| d.as_secs_f64()),
                active_requests: r.handle.stats.active.load(Ordering::Relaxed),
                waiting_requests: r.handle.stats.waiting.load(Ordering::Relaxed),
                load_seconds: r.handle.load_seconds,
                status: "ready".into(),
                pid: r.handle.pid(),
                rss_bytes: r.rss_bytes,
                crashes: crashed.total,
                last_crash: crashed.last.map(|(exit, _)| exit),
                gpu_layers: placed.layers_gpu,
                layers_total: placed.layers_total,
                device_bytes: placed.device_bytes,
                devices: placed.devices.iter().map(|d| d.name.clone()).collect(),
                gpu_fallback: placed.fallback.clone(),
            }
        })
        .collect();
    let memory_bytes = data.iter().map(|m| m.memory_bytes).sum();
    data.extend(failed(&app, &scope));
    Json(LoadedModels { object: "list".into(), data, memory_bytes })
}

fn kind_name(kind: ModelKind) -> String {
    match kind {
        ModelKind::Causal => "causal".into(),
        ModelKind::Embedding => "embedding".into(),
    }
}

/// Models whose worker crashed and that have not loaded again, as `failed` entries.
fn failed(app: &AppState, scope: &crate::services::owner::Scoped<'_>) -> Vec<LoadedModel> {
    let registry = app.models.registry();
    app.models
        .crashes()
        .all()
        .into_iter()
        .filter(|(id, c)| c.failed && scope.allows(id))
        .filter_map(|(id, c)| {
            let kind = kind_name(registry.resolve(&id).ok()?.kind);
            let last_used = c.last.as_ref().and_then(|(_, at)| at.duration_since(std::time::UNIX_EPOCH).ok());
            Some(LoadedModel {
                id,
                kind,
                memory_bytes: 0,
                last_used: last_used.map_or(0, |d| d.as_secs()),
                expires_in: None,
                active_requests: 0,
                waiting_requests: 0,
                load_seconds: 0.0,
                status: "failed".into(),
                pid: None,
                rss_bytes: None,
                crashes: c.total,
                last_crash: c.last.map(|(exit, _)| exit),
                gpu_layers: 0,
                layers_total: 0,
                device_bytes: 0,
                devices: Vec::new(),
                gpu_fallback: None,
            })
        })
        .collect()
}
