//! What every benchmark shares: which paths it drives, percentiles, this process's memory and
//! an in-process server to drive over HTTP.

use clap::Args;
use hearth_engine::ModelManager;
use std::sync::Arc;

/// Which paths a benchmark drives.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Only the raw engine (no HTTP).
    #[arg(long)]
    pub raw: bool,
    /// Only HTTP (skip the raw engine).
    #[arg(long, conflicts_with = "raw")]
    pub http_only: bool,
    /// Drive an already running server at this base URL (e.g. http://127.0.0.1:8080) instead of
    /// an in-process one (implies --http-only).
    #[arg(long)]
    pub url: Option<String>,
}

/// The `p` quantile (0-1) of `v`, 0 when empty.
pub(crate) fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A memory figure of this process from /proc/self/status (`VmRSS:`, `VmHWM:`), in MB.
pub(crate) fn rss_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Starts an in-process server on a loopback port; returns its base URL.
pub(crate) async fn local_server(models: Arc<ModelManager>, limits: hearth_server::Limits) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = hearth_server::app(hearth_server::AppState::new(models, limits));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
