//! Probes and metrics: `GET /health` (details), `/health/live`, `/health/ready`, `/metrics`.

use crate::http::metrics::{self, Gauge};
use crate::services::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_engine::ModelKind;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::Duration;
use utoipa::ToSchema;

/// How long the default model's worker may take to answer the readiness ping.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`: the server is up, and how each loaded model's worker stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(value_type = String, pattern = "^ok$")]
    pub status: &'static str,
    /// The loaded models.
    pub models: Vec<WorkerHealth>,
    /// The compute backends of this build (`CPU`, `CPU, Vulkan`); absent for a probe without a
    /// key when keys are configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backends: Option<String>,
    /// The GPU devices, with their memory now.
    pub devices: Vec<DeviceHealth>,
}

/// One GPU device in `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceHealth {
    /// The backend's name for it (`Vulkan0`, `CUDA0`).
    pub name: String,
    /// What it is.
    pub description: String,
    /// Its backend.
    pub backend: String,
    /// Its memory in bytes.
    pub memory_total: u64,
    /// Its free memory now, in bytes.
    pub memory_free: u64,
}

/// One loaded model's worker in `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerHealth {
    /// The model's id.
    pub id: String,
    /// Sequences (or embedding requests) it runs now.
    pub active_sequences: usize,
    /// Requests waiting for it.
    pub waiting: usize,
    /// Requests it has finished.
    pub finished: u64,
    /// Requests cancelled (client gone, stop, timeout).
    pub cancelled: u64,
    /// Sequences it can run at once.
    pub slots: usize,
    /// Its context length in tokens.
    pub n_ctx: u32,
    /// `ready`, or `failed` for a model whose worker crashed (it loads again on its next
    /// request).
    #[schema(value_type = String, pattern = "^(ready|failed)$")]
    pub status: &'static str,
    /// Crashes of its worker process since the server started.
    pub crashes: u64,
    /// Resident memory of its worker process (process isolation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
}

/// A probe's answer: `ok` (live), `ready` or `loading` (ready), with the default model.
#[derive(Debug, Serialize, ToSchema)]
pub struct Probe {
    /// `ok`, `ready` or `loading`.
    #[schema(value_type = String, pattern = "^(ok|ready|loading)$")]
    pub status: &'static str,
    /// The default model, when there is one (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// Liveness plus the state of each loaded model's worker.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, description = "Up, with per-model worker counters", body = Health)))]
pub async fn health(State(app): State<AppState>, who: crate::services::owner::Principal) -> Json<Health> {
    if app.keys.enabled() && !who.has_key() {
        // A probe without a key learns that the server is up, not which models it serves or
        // how busy they are.
        return Json(Health { status: "ok", models: Vec::new(), backends: None, devices: Vec::new() });
    }
    let scope = who.models(&app.models);
    let crashes = app.models.crashes();
    let mut models: Vec<WorkerHealth> = app
        .models
        .loaded()
        .iter()
        .map(|h| WorkerHealth {
            id: h.info.id.clone(),
            active_sequences: h.stats.active.load(Ordering::Relaxed),
            waiting: h.stats.waiting.load(Ordering::Relaxed),
            finished: h.stats.finished.load(Ordering::Relaxed),
            cancelled: h.stats.cancelled.load(Ordering::Relaxed),
            slots: h.loaded.n_slots,
            n_ctx: h.loaded.n_ctx,
            status: "ready",
            crashes: crashes.get(&h.info.id).map_or(0, |c| c.total),
            rss_bytes: h.rss_bytes(),
        })
        .filter(|m| scope.allows(&m.id))
        .collect();
    for (id, c) in crashes.all().into_iter().filter(|(id, c)| c.failed && scope.allows(id)) {
        let (active_sequences, waiting, finished, cancelled, slots, n_ctx) = (0, 0, 0, 0, 0, 0);
        let status = "failed";
        let (crashes, rss_bytes) = (c.total, None);
        models.push(WorkerHealth {
            id,
            active_sequences,
            waiting,
            finished,
            cancelled,
            slots,
            n_ctx,
            status,
            crashes,
            rss_bytes,
        });
    }
    let devices = app
        .models
        .devices()
        .into_iter()
        .map(|d| DeviceHealth {
            name: d.name,
            description: d.description,
            backend: d.backend,
            memory_total: d.memory_total,
            memory_free: d.memory_free,
        })
        .collect();
    Json(Health { status: "ok", models, backends: Some(app.models.backends()), devices })
}

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "The process serves HTTP", body = Probe)))]
pub async fn live() -> Json<Probe> {
    Json(Probe { status: "ok", model: None })
}

/// 200 once the default model (if any) is loaded and its worker answers; 503 before.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses((status = 200, description = "The default model is loaded and answers", body = Probe), (status = 503, description = "Still loading", body = Probe)))]
pub async fn ready(State(app): State<AppState>, who: crate::services::owner::Principal) -> Response {
    let Some(default) = app.models.default_model() else {
        return Json(Probe { status: "ready", model: None }).into_response();
    };
    let handle = app.models.loaded().into_iter().find(|h| h.info.id == default);
    let answered = match handle {
        Some(h) => tokio::time::timeout(PING_TIMEOUT, h.ping()).await.is_ok_and(|r| r.is_ok()),
        None if app.models.crashes().get(default).is_some_and(|c| c.failed) => {
            // Its worker crashed: load it again, or a balancer that stops sending requests to
            // an unready server would keep it unready for good.
            let (models, default) = (app.models.clone(), default.to_string());
            tokio::spawn(async move {
                if let Err(e) = models.get(&default).await {
                    tracing::warn!(model = %default, error = %e, "the default model did not load for readiness");
                }
            });
            false
        }
        None => false,
    };
    // The model's name is for callers with a key, when keys are configured.
    let model = (!app.keys.enabled() || who.has_key()).then(|| default.to_string());
    if answered {
        Json(Probe { status: "ready", model }).into_response()
    } else {
        let body = Probe { status: "loading", model };
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
        if let Some(rss) = h.rss_bytes() {
            g(metrics::MODEL_RSS_BYTES, rss as f64);
        }
        g(metrics::MODEL_GPU_LAYERS, f64::from(h.loaded.placement.layers_gpu));
        g(metrics::MODEL_DEVICE_BYTES, h.loaded.placement.device_bytes as f64);
    }
    for d in app.models.devices() {
        let labels = vec![("device", d.name.clone())];
        gauges.push(Gauge { name: metrics::DEVICE_TOTAL_BYTES, labels: labels.clone(), value: d.memory_total as f64 });
        gauges.push(Gauge { name: metrics::DEVICE_FREE_BYTES, labels, value: d.memory_free as f64 });
    }
    for (model, c) in app.models.crashes().all() {
        let labels = vec![("model", model)];
        gauges.push(Gauge { name: metrics::MODEL_CRASHES, labels: labels.clone(), value: c.total as f64 });
        gauges.push(Gauge { name: metrics::MODEL_FAILED, labels, value: f64::from(u8::from(c.failed)) });
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics::render(&gauges)).into_response()
}
