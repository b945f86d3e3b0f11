//! Serving until a shutdown signal, then draining: stop accepting connections, let running
//! streams finish for a grace period, then end the rest with a final error event.

use crate::services::state::AppState;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Extra time after the grace period for streams to write their last event and close.
const CLOSE_TIME: Duration = Duration::from_secs(5);

/// Serves `state` on `listener` until `signal` resolves, then drains as described above.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    signal: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (tx, rx) = watch::channel(false);
    let limits = state.limits;
    let app = crate::app(state.with_stop(rx));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let drain = async move {
        signal.await;
        tracing::info!(
            grace_secs = grace.as_secs_f64(),
            "shutting down: no new connections; running streams may finish"
        );
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            tracing::warn!("shutdown grace period over; cancelling running requests");
            let _ = tx.send(true);
            tokio::time::sleep(CLOSE_TIME).await;
            let _ = done_tx.send(());
        });
    };
    let server = crate::http::listen::serve(listener, app, limits, drain);
    tokio::select! {
        r = server => r,
        _ = done_rx => {
            tracing::warn!("connections still open after the grace period; exiting");
            Ok(())
        }
    }
}
