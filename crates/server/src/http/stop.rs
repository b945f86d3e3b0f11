//! The signal that running requests must end (the shutdown grace period is over).

use tokio::sync::watch;

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
