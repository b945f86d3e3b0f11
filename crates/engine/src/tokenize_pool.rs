//! The threads that tokenize one model's long texts: a few, fed through a bounded queue, at
//! the CPU priority the backend gives background work, so a client's 4 MiB prompt costs the
//! model's running streams as little as the machine allows.

use crate::tokenizer::Tokenizer;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&Tokenizer) + Send>;

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolError {
    /// The queue is full.
    Full,
    /// The pool's threads are gone, or the job panicked.
    Failed,
}

/// A model's tokenizing threads; they end when the pool is dropped and their queue is done.
pub(crate) struct TokenizePool {
    tx: SyncSender<Job>,
}

impl TokenizePool {
    /// Starts `threads` threads named after `model`; each runs `init` first (the backend's
    /// background priority), and up to `queue` jobs may wait.
    pub(crate) fn start(
        model: &str,
        tokenizer: &Tokenizer,
        threads: usize,
        queue: usize,
        init: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<Job>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let (rx, tok, init) = (rx.clone(), tokenizer.clone(), init.clone());
            std::thread::Builder::new().name(format!("hearth-tokenize-{i}-{model}")).spawn(move || {
                init();
                serve(&rx, &tok);
            })?;
        }
        Ok(Self { tx })
    }

    /// Runs `f` on a pool thread and waits for its answer.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Tokenizer) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |t| {
            let _ = reply.send(f(t));
        });
        self.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => PoolError::Full,
            TrySendError::Disconnected(_) => PoolError::Failed,
        })?;
        rx.await.map_err(|_| PoolError::Failed)
    }
}

fn serve(rx: &Mutex<Receiver<Job>>, tok: &Tokenizer) {
    loop {
        let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { return };
        // A panicking job drops its reply (its caller hears `Failed`); the thread goes on.
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(tok))).is_err() {
            tracing::error!("a tokenizing job panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::testing::ByteVocab;

    fn pool(queue: usize) -> TokenizePool {
        let tok = Tokenizer::new(Arc::new(ByteVocab::default()));
        TokenizePool::start("test", &tok, 1, queue, Arc::new(|| {})).unwrap()
    }

    #[tokio::test]
    async fn jobs_run_and_a_panic_fails_only_its_own() {
        let p = pool(4);
        assert_eq!(p.run(|t| t.tokenize("ab", false).len()).await, Ok(2));
        assert_eq!(p.run(|_| -> usize { panic!("boom") }).await, Err(PoolError::Failed));
        assert_eq!(p.run(|t| t.n_vocab()).await, Ok(300));
    }

    #[tokio::test]
    async fn a_full_queue_refuses() {
        let p = pool(1);
        let (hold, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        p.tx.try_send(Box::new(move |_| {
            let _ = started.send(());
            let _ = wait.recv();
        }))
        .unwrap();
        // The thread runs that job and blocks; one more waits; the next is refused.
        running.recv().unwrap();
        assert!(p.tx.try_send(Box::new(|_| {})).is_ok());
        assert_eq!(p.run(|_| ()).await, Err(PoolError::Full));
        drop(hold);
    }
}
