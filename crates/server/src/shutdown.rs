//! Serving until a shutdown signal, then draining: stop accepting connections, let running
//! streams finish for a grace period, then end the rest with a final error event.

use crate::state::AppState;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Extra time after the grace period for streams to write their last event and close.
const CLOSE_TIME: Duration = Duration::from_secs(5);

/// A receiver that turns true when running requests must stop; cheap to clone.
pub type StopSignal = watch::Receiver<bool>;

/// A signal that never fires (for states built without a server, e.g. in tests).
pub fn never() -> StopSignal {
    let (tx, rx) = watch::channel(false);
    // Keep the sender alive for the process, so `changed()` never completes.
    std::mem::forget(tx);
    rx
}

/// Resolves when `stop` turns true.
pub async fn stopped(stop: &mut StopSignal) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

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
    let server = crate::listen::serve(listener, app, limits, drain);
    tokio::select! {
        r = server => r,
        _ = done_rx => {
            tracing::warn!("connections still open after the grace period; exiting");
            Ok(())
        }
    }
}
