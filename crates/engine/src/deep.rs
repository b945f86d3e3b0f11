//! Work that may recurse deeply (llama.cpp's GBNF parser, grammar engine and JSON-Schema
//! converter) runs on threads with a known, large stack: model workers, and a thread of its
//! own for each conversion, so that neither an async runtime thread nor a default 2 MiB stack
//! is what stands between a request and a stack overflow. [`crate::limits`] bounds the depth;
//! this is the room beneath it.

use crate::error::EngineError;
use tokio::sync::oneshot;

/// Stack of model worker threads and conversion threads (virtual memory: only what a thread
/// touches is resident).
pub const DEEP_STACK: usize = 64 << 20;

/// Runs `f` on a new thread named `name` with [`DEEP_STACK`] and awaits its result.
///
/// # Errors
/// [`EngineError::WorkerFailed`] when the thread cannot start or `f` panics.
pub async fn run<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, EngineError> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(DEEP_STACK)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| {
            tracing::error!(error = %e, "a conversion thread could not start");
            EngineError::WorkerFailed
        })?;
    rx.await.map_err(|_| EngineError::WorkerFailed)
}

#[cfg(test)]
mod tests {
    /// Recursion that would overflow a default 2 MiB thread stack.
    fn depth(n: u64) -> u64 {
        let pad = std::hint::black_box([0u8; 512]);
        if n == 0 {
            u64::from(pad[0])
        } else {
            depth(n - 1) + 1
        }
    }

    #[tokio::test]
    async fn deep_recursion_fits_and_a_panic_is_an_error() {
        assert_eq!(super::run("t", || depth(20_000)).await.unwrap(), 20_000);
        assert!(super::run("t", || -> u8 { panic!("boom") }).await.is_err());
    }
}
