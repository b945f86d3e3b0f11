//! Probes and metrics: `GET /health` (details), `/health/live`, `/health/ready`, `/metrics`.

use crate::metrics::{self, Gauge};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_engine::ModelKind;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long the default model's worker may take to answer the readiness ping.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness plus the state of each loaded model's worker.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, description = "Up, with per-model worker counters", body = serde_json::Value)))]
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

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "The process serves HTTP", body = serde_json::Value)))]
pub async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// 200 once the default model (if any) is loaded and its worker answers; 503 before.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses((status = 200, description = "The default model is loaded and answers", body = serde_json::Value), (status = 503, description = "Still loading", body = serde_json::Value)))]
pub async fn ready(State(app): State<AppState>) -> Response {
    let Some(default) = app.models.default_model() else {
        return Json(serde_json::json!({ "status": "ready" })).into_response();
    };
    let handle = app.models.loaded().into_iter().find(|h| h.info.id == default);
    let answered = match handle {
        Some(h) => tokio::time::timeout(PING_TIMEOUT, h.ping()).await.is_ok_and(|r| r.is_ok()),
        None => false,
    };
    if answered {
        Json(serde_json::json!({ "status": "ready", "model": default })).into_response()
    } else {
        let body = serde_json::json!({ "status": "loading", "model": default });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

/// Prometheus text exposition of every metric.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(app): State<AppState>) -> Response {
    let loaded = app.models.loaded();
    let mut gauges = vec![Gauge { name: metrics::MODELS_LOADED, labels: vec![], value: loaded.len() as f64 }];
    for h in &loaded {
        let model = || vec![("model", h.info.id.clone())];
        let kv = if h.info.kind == ModelKind::Causal { u64::from(h.loaded.n_kv) } else { 0 };
        let mut g = |name, value: f64| gauges.push(Gauge { name, labels: model(), value });
        g(metrics::QUEUE_DEPTH, h.stats.waiting.load(Ordering::Relaxed) as f64);
        g(metrics::ACTIVE_SEQUENCES, h.stats.active.load(Ordering::Relaxed) as f64);
        g(metrics::KV_CELLS_USED, h.stats.kv_used.load(Ordering::Relaxed) as f64);
        g(metrics::KV_CELLS_CACHED, h.stats.kv_cached.load(Ordering::Relaxed) as f64);
        g(metrics::KV_CELLS, kv as f64);
        g(metrics::MODEL_MEMORY_BYTES, h.memory_bytes() as f64);
        g(metrics::MODEL_LOAD_SECONDS, h.load_seconds);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics::render(&gauges)).into_response()
}
