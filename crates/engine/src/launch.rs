//! Starting a model's worker: on a thread of this process, or in a child process
//! ([`crate::process`]), as the settings' isolation says. Either way the handle gets a bounded
//! command channel and the loaded model's facts.

use crate::backend::{BackendInfo, BackendLoader, LoadSpec};
use crate::command::Command;
use crate::crash::CrashLog;
use crate::embed_worker;
use crate::error::{EngineError, LoadError};
use crate::process::{parent, Isolation, WorkerProgram};
use crate::registry::ModelKind;
use crate::worker::{self, WorkerConfig, WorkerStats};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Into a worker: a thread's channel, or a worker process's bridge.
#[derive(Debug, Clone)]
pub(crate) enum CommandTx {
    Thread(SyncSender<Command>),
    Process(mpsc::Sender<Command>),
}

impl CommandTx {
    /// Queues `cmd` without waiting.
    pub(crate) fn try_send(&self, cmd: Command) -> Result<(), TrySendError<Command>> {
        match self {
            CommandTx::Thread(tx) => tx.try_send(cmd),
            CommandTx::Process(tx) => tx.try_send(cmd).map_err(|e| match e {
                mpsc::error::TrySendError::Full(c) => TrySendError::Full(c),
                mpsc::error::TrySendError::Closed(c) => TrySendError::Disconnected(c),
            }),
        }
    }
}

/// A started worker.
pub(crate) struct Launched {
    pub(crate) tx: CommandTx,
    pub(crate) info: BackendInfo,
    /// The worker process, in process isolation.
    pub(crate) pid: Option<u32>,
}

/// Starts `spec`'s worker and waits until its model is loaded (blocking).
///
/// # Errors
/// [`EngineError::ModelLoad`] when the worker cannot start or the model does not load.
pub(crate) fn launch(
    loader: Arc<dyn BackendLoader>,
    spec: LoadSpec,
    isolation: &Isolation,
    cfg: WorkerConfig,
    room: usize,
    stats: Arc<WorkerStats>,
    crashes: Option<Arc<CrashLog>>,
) -> Result<Launched, EngineError> {
    let id = spec.model.id.clone();
    let load_error = |reason: LoadError| EngineError::ModelLoad { model: id.clone(), reason };
    match isolation {
        Isolation::Thread => on_thread(loader, spec, cfg, room, stats).map_err(load_error),
        Isolation::Process(program) => in_process(program, spec, cfg, room, stats, crashes).map_err(load_error),
    }
}

fn on_thread(
    loader: Arc<dyn BackendLoader>,
    spec: LoadSpec,
    cfg: WorkerConfig,
    room: usize,
    stats: Arc<WorkerStats>,
) -> Result<Launched, LoadError> {
    let (tx, rx) = sync_channel(room);
    let (ready_tx, ready_rx) = sync_channel::<Result<BackendInfo, LoadError>>(1);
    std::thread::Builder::new()
        .name(format!("hearth-model-{}", spec.model.id))
        .stack_size(crate::deep::DEEP_STACK)
        .spawn(move || serve(&*loader, &spec, &rx, &stats, cfg, ready_tx))
        .map_err(|e| LoadError::Thread(e.kind()))?;
    let info = ready_rx.recv().map_err(|_| LoadError::WorkerDied)??;
    Ok(Launched { tx: CommandTx::Thread(tx), info, pid: None })
}

fn in_process(
    program: &WorkerProgram,
    spec: LoadSpec,
    cfg: WorkerConfig,
    room: usize,
    stats: Arc<WorkerStats>,
    crashes: Option<Arc<CrashLog>>,
) -> Result<Launched, LoadError> {
    let (tx, rx) = mpsc::channel(room);
    let (ready_tx, ready_rx) = sync_channel(1);
    let bridge = parent::Bridge { program: program.clone(), spec, cfg, rx, stats, crashes };
    parent::spawn(bridge, ready_tx).map_err(|e| LoadError::Thread(e.kind()))?;
    let started = ready_rx.recv().map_err(|_| LoadError::WorkerDied)??;
    Ok(Launched { tx: CommandTx::Process(tx), info: started.info, pid: Some(started.pid) })
}

/// The body of a worker thread: load, report readiness, run the loop for the model's kind.
fn serve(
    loader: &dyn BackendLoader,
    spec: &LoadSpec,
    rx: &Receiver<Command>,
    stats: &WorkerStats,
    cfg: WorkerConfig,
    ready_tx: SyncSender<Result<BackendInfo, LoadError>>,
) {
    let mut ready = Some(ready_tx);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        loader.run(spec, &mut |backend| {
            if let Some(r) = ready.take() {
                let _ = r.send(Ok(backend.info()));
            }
            match spec.model.kind {
                ModelKind::Causal => worker::run(backend, rx, stats, cfg),
                ModelKind::Embedding => embed_worker::run(&spec.model.id, backend, rx, stats, cfg.embed_budget),
            }
        })
    }));
    match result {
        Ok(Ok(())) => tracing::info!(model = %spec.model.id, "model worker stopped"),
        Ok(Err(msg)) => {
            if let Some(r) = ready.take() {
                let _ = r.send(Err(msg));
            }
        }
        Err(_) => tracing::error!(model = %spec.model.id, "model worker panicked; it will be reloaded on next use"),
    }
    stats.dead.store(true, Ordering::Release);
}
