//! The worker process: loads one model and runs the same worker loop as thread mode, taking
//! commands from the server on stdin and sending events back on stdout.
//!
//! Threads: the main thread loads the model and runs the loop (with the main thread's large
//! stack); a reader thread turns frames into [`Command`]s; a writer thread writes frames; a
//! one-thread runtime forwards each sequence's events as the server grants credit, so a client
//! that stops reading stalls only its own sequence.

use super::wire::{self, FromChild, Hello, StatsSnapshot, ToChild, WorkerError};
use super::EVENT_WINDOW;
use crate::backend::BackendLoader;
use crate::command::Command;
use crate::embed_worker;
use crate::error::{EngineError, LoadError};
use crate::registry::ModelKind;
use crate::request::Event;
use crate::worker::{self, WorkerStats};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::AbortHandle;

/// Commands that may wait for the worker loop. The server bounds its own queue; this only
/// makes the worker's finite for any parent.
const CHILD_QUEUE: usize = 4096;
/// Frames waiting for the writer thread.
const OUT_QUEUE: usize = 256;
/// How often the counters are compared and sent when changed.
const STATS_EVERY: Duration = Duration::from_millis(50);

/// Exit codes of a worker process.
pub mod exit {
    /// The model was served and unloaded.
    pub const OK: i32 = 0;
    /// The server went away or the pipe broke.
    pub const PIPE: i32 = 1;
    /// The server speaks another protocol version.
    pub const PROTOCOL: i32 = 3;
}

/// Test-only behaviour of a worker (set by the binary in debug builds only).
#[derive(Debug, Clone, Default)]
pub struct ChildOptions {
    /// A generation request whose stop strings hold this text aborts the process (crash tests).
    pub abort_on_stop: Option<String>,
}

/// One forwarded stream: how to end it, and its credit.
struct Flow {
    abort: AbortHandle,
    credits: Arc<Semaphore>,
}

type Flows = Arc<Mutex<HashMap<(u64, u32), Flow>>>;

/// Serves one model for the server at the other end of `input`/`output` until it closes
/// `input`. Returns the process's exit code.
pub fn serve(
    loader: &dyn BackendLoader,
    mut input: impl Read + Send + 'static,
    mut output: impl Write + Send + 'static,
    opts: ChildOptions,
) -> i32 {
    let theirs = wire::read_parent_opening(&mut input).unwrap_or(0);
    if wire::write_child_opening(&mut output).is_err() {
        return exit::PIPE;
    }
    if theirs != wire::PROTOCOL_VERSION {
        tracing::error!(ours = wire::PROTOCOL_VERSION, theirs, "the server speaks another protocol version");
        return exit::PROTOCOL;
    }
    let hello: Hello = match wire::read_frame(&mut input) {
        Ok(Some(h)) => h,
        _ => return exit::PIPE,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "the worker's runtime could not start");
            return exit::PIPE;
        }
    };
    let (out, out_rx) = mpsc::channel::<Vec<u8>>(OUT_QUEUE);
    let writer =
        std::thread::Builder::new().name("hearth-worker-out".into()).spawn(move || write_frames(out_rx, output));
    let stats = Arc::new(WorkerStats::default());
    let (cmd_tx, cmd_rx) = sync_channel(CHILD_QUEUE);
    let reader = Reader {
        cmd: Some(cmd_tx),
        out: out.clone(),
        flows: Flows::default(),
        stats: stats.clone(),
        rt: rt.handle().clone(),
        opts,
    };
    let reading = std::thread::Builder::new().name("hearth-worker-in".into()).spawn(move || reader.run(input));
    if writer.is_err() || reading.is_err() {
        return exit::PIPE;
    }
    rt.spawn(send_stats(stats.clone(), out.clone()));
    let spec = hello.spec.into_spec();
    let cfg = hello.cfg;
    // The model's thread has a large stack of known size (llama.cpp's grammar code recurses),
    // whatever the main thread's happens to be.
    let (ready, stats_for_loop) = (out.clone(), stats.clone());
    let serve_model = move || {
        let stats = stats_for_loop;
        loader.run(&spec, &mut |backend| {
            let _ = ready.blocking_send(wire::frame(&FromChild::Ready(backend.info())));
            match spec.model.kind {
                ModelKind::Causal => worker::run(backend, &cmd_rx, &stats, cfg),
                ModelKind::Embedding => embed_worker::run(&spec.model.id, backend, &cmd_rx, &stats, cfg.embed_budget),
            }
        })
    };
    let loaded = std::thread::scope(|s| {
        let model = std::thread::Builder::new().name("hearth-model".into()).stack_size(crate::deep::DEEP_STACK);
        match model.spawn_scoped(s, serve_model) {
            Ok(t) => t.join().unwrap_or(Err(LoadError::WorkerDied)),
            Err(e) => Err(LoadError::Thread(e.kind())),
        }
    });
    if let Err(e) = loaded {
        let _ = out.blocking_send(wire::frame(&FromChild::LoadFailed(e)));
    }
    rt.shutdown_timeout(Duration::from_secs(1));
    drop(out);
    if let Ok(w) = writer {
        let _ = w.join();
    }
    exit::OK
}

/// Writes frames as they come, flushing whenever none is waiting. A broken pipe means the
/// server is gone: the process ends at once.
fn write_frames(mut rx: mpsc::Receiver<Vec<u8>>, mut output: impl Write) {
    while let Some(buf) = rx.blocking_recv() {
        let mut written = output.write_all(&buf);
        if written.is_ok() && rx.is_empty() {
            written = output.flush();
        }
        if let Err(e) = written {
            tracing::info!(error = %e, "the server is gone; the worker exits");
            std::process::exit(exit::PIPE);
        }
    }
    let _ = output.flush();
}

/// Sends the worker's counters whenever they change.
async fn send_stats(stats: Arc<WorkerStats>, out: mpsc::Sender<Vec<u8>>) {
    let mut last = StatsSnapshot::default();
    loop {
        tokio::time::sleep(STATS_EVERY).await;
        let now = StatsSnapshot {
            active: stats.active.load(Ordering::Relaxed) as u64,
            kv_used: stats.kv_used.load(Ordering::Relaxed) as u64,
            kv_cached: stats.kv_cached.load(Ordering::Relaxed) as u64,
            finished: stats.finished.load(Ordering::Relaxed),
            cancelled: stats.cancelled.load(Ordering::Relaxed),
        };
        if now != last {
            last = now;
            if out.send(wire::frame(&FromChild::Stats(now))).await.is_err() {
                return;
            }
        }
    }
}

/// The reader thread's state.
struct Reader {
    /// Into the worker loop; dropped when the server closes the pipe, which ends the loop.
    cmd: Option<SyncSender<Command>>,
    out: mpsc::Sender<Vec<u8>>,
    flows: Flows,
    stats: Arc<WorkerStats>,
    rt: tokio::runtime::Handle,
    opts: ChildOptions,
}

impl Reader {
    fn run(mut self, mut input: impl Read) {
        loop {
            match wire::read_frame::<ToChild>(&mut input) {
                Ok(Some(msg)) => self.take(msg),
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "unreadable frame from the server");
                    break;
                }
            }
        }
        // The server closed the pipe: stop taking work and end every stream, so the loop
        // frees its sequences and returns.
        self.cmd = None;
        for (_, f) in self.flows.lock().unwrap_or_else(PoisonError::into_inner).drain() {
            f.abort.abort();
        }
    }

    fn take(&mut self, msg: ToChild) {
        match msg {
            ToChild::Generate { id, req, forks } => {
                if self.opts.abort_on_stop.as_ref().is_some_and(|m| req.stop.contains(m)) {
                    tracing::error!("test fault: aborting on a marked request");
                    std::process::abort();
                }
                let mut events = Vec::new();
                for choice in 0..=forks {
                    let (tx, rx) = mpsc::channel(crate::handle::EVENT_BUFFER);
                    self.forward(id, choice, rx);
                    events.push(tx);
                }
                let first = events.remove(0);
                self.stats.waiting.fetch_add(1, Ordering::Relaxed);
                let cmd = Command::Generate { req, events: first, forks: events };
                if let Err(e) = self.send(cmd) {
                    self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
                    if let Command::Generate { events, forks, .. } = e {
                        for tx in std::iter::once(events).chain(forks) {
                            let _ = tx.try_send(Event::Error(EngineError::Overloaded { model: String::new() }));
                        }
                    }
                }
            }
            ToChild::Embed { id, req } => {
                let (reply, rx) = oneshot::channel();
                self.stats.waiting.fetch_add(1, Ordering::Relaxed);
                if self.send(Command::Embed { req, reply }).is_err() {
                    self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
                }
                let (out, flows) = (self.out.clone(), self.flows.clone());
                self.spawn_flow(id, 0, Arc::new(Semaphore::new(0)), async move {
                    let result = match rx.await {
                        Ok(r) => r.map_err(WorkerError::from),
                        Err(_) => Err(WorkerError::Overloaded),
                    };
                    let _ = out.send(wire::frame(&FromChild::Embedded { id, result })).await;
                    flows.lock().unwrap_or_else(PoisonError::into_inner).remove(&(id, 0));
                });
            }
            ToChild::Ping { id } => {
                let (reply, rx) = oneshot::channel();
                let _ = self.send(Command::Ping { reply });
                let out = self.out.clone();
                self.rt.spawn(async move {
                    if rx.await.is_ok() {
                        let _ = out.send(wire::frame(&FromChild::Pong { id })).await;
                    }
                });
            }
            ToChild::Cancel { id, choice } => {
                if let Some(f) = self.flows.lock().unwrap_or_else(PoisonError::into_inner).remove(&(id, choice)) {
                    f.abort.abort();
                }
                let _ = self.out.blocking_send(wire::frame(&FromChild::Closed { id, choice }));
            }
            ToChild::Credit { id, choice, n } => {
                if let Some(f) = self.flows.lock().unwrap_or_else(PoisonError::into_inner).get(&(id, choice)) {
                    f.credits.add_permits(n as usize);
                }
            }
        }
    }

    /// Hands a command to the worker loop; gives it back when the loop cannot take it.
    fn send(&self, cmd: Command) -> Result<(), Command> {
        let Some(tx) = &self.cmd else { return Err(cmd) };
        tx.try_send(cmd).map_err(|e| match e {
            TrySendError::Full(c) | TrySendError::Disconnected(c) => c,
        })
    }

    /// Forwards the events of `(id, choice)` while the server has credit for them.
    fn forward(&self, id: u64, choice: u32, mut rx: mpsc::Receiver<Event>) {
        let credits = Arc::new(Semaphore::new(EVENT_WINDOW));
        let (out, flows, c) = (self.out.clone(), self.flows.clone(), credits.clone());
        self.spawn_flow(id, choice, credits, async move {
            let mut ended = false;
            while let Some(ev) = rx.recv().await {
                let Ok(permit) = c.acquire().await else { break };
                permit.forget();
                let event = wire::WireEvent::from(ev);
                ended = event.is_last();
                if out.send(wire::frame(&FromChild::Event { id, choice, event })).await.is_err() || ended {
                    break;
                }
            }
            flows.lock().unwrap_or_else(PoisonError::into_inner).remove(&(id, choice));
            if !ended {
                let _ = out.send(wire::frame(&FromChild::Closed { id, choice })).await;
            }
        });
    }

    /// Runs `task` for `(id, choice)`, tracked so that a cancel can end it. The map is held
    /// while the task starts, so a task that ends at once removes its own entry after it.
    fn spawn_flow(
        &self,
        id: u64,
        choice: u32,
        credits: Arc<Semaphore>,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let mut flows = self.flows.lock().unwrap_or_else(PoisonError::into_inner);
        let abort = self.rt.spawn(task).abort_handle();
        flows.insert((id, choice), Flow { abort, credits });
    }
}
