//! The server's side of a worker process: a bridge thread that starts the child, hands it the
//! handle's commands, routes its events back to each request, and notices at once when it dies.
//!
//! The bridge runs a one-thread runtime of its own, so neither a busy server runtime nor a
//! slow client delays another request's events: every choice has a pump task that waits for
//! its own client and grants the child credit as events are delivered.

use super::wire::{self, FromChild, Hello, StatsSnapshot, ToChild, WireSpec};
use super::{WorkerProgram, CREDIT_BATCH, EVENT_WINDOW};
use crate::backend::{BackendInfo, LoadSpec};
use crate::command::Command;
use crate::crash::CrashLog;
use crate::embed::EmbedOutput;
use crate::error::{EngineError, LoadError};
use crate::request::Event;
use crate::worker::{WorkerConfig, WorkerStats};
use std::collections::{HashMap, VecDeque};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, oneshot};

/// Frames waiting for the child's stdin.
const WRITE_QUEUE: usize = 1024;
/// Decoded frames from the child waiting for the bridge.
const READ_QUEUE: usize = 256;
/// Lines of the child's stderr kept for the log when it dies.
const TAIL_LINES: usize = 20;
/// Longest stderr line kept (the rest of a longer one is dropped).
const MAX_LINE: usize = 4096;
/// How long an unloaded worker may take to free its model and exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(10);
/// How long a dying worker may take to be reaped before it is killed.
const REAP_WAIT: Duration = Duration::from_secs(2);

/// What the bridge reports once the model is loaded.
pub(crate) struct Started {
    pub(crate) info: BackendInfo,
    pub(crate) pid: u32,
}

/// Everything the bridge thread needs.
pub(crate) struct Bridge {
    pub(crate) program: WorkerProgram,
    pub(crate) spec: LoadSpec,
    pub(crate) cfg: WorkerConfig,
    pub(crate) rx: mpsc::Receiver<Command>,
    pub(crate) stats: Arc<WorkerStats>,
    pub(crate) crashes: Option<Arc<CrashLog>>,
}

/// Starts the bridge thread; its runtime starts the child. `ready` gets the loaded model or
/// why it did not load.
///
/// # Errors
/// When the thread cannot start.
pub(crate) fn spawn(b: Bridge, ready: SyncSender<Result<Started, LoadError>>) -> std::io::Result<()> {
    let name = format!("hearth-bridge-{}", b.spec.model.id);
    std::thread::Builder::new().name(name).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready.send(Err(LoadError::Thread(e.kind())));
                return;
            }
        };
        rt.block_on(run(b, ready));
    })?;
    Ok(())
}

/// How the bridge's loop ended.
enum End {
    /// Every handle is gone and nothing runs: the model was unloaded.
    Unloaded,
    /// The child's output ended or broke while the model was in use or loaded.
    Died,
}

async fn run(b: Bridge, ready: SyncSender<Result<Started, LoadError>>) {
    let model = b.spec.model.id.clone();
    let mut child = match start_child(&b.program) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(model = %model, program = %b.program.program.display(), error = %e, "cannot start the model's worker process");
            let _ = ready.send(Err(LoadError::Spawn(e.kind())));
            return;
        }
    };
    let pid = child.id().unwrap_or(0);
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = ready.send(Err(LoadError::WorkerDied));
        return;
    };
    let relay = tokio::spawn(relay_stderr(stderr, tail.clone()));
    let (to_child, write_rx) = mpsc::channel(WRITE_QUEUE);
    tokio::spawn(write_frames(stdin, write_rx));
    let hello = Hello { spec: WireSpec::from(&b.spec), cfg: b.cfg };
    let _ = to_child.send(wire::frame(&hello)).await;
    let mut stdout = BufReader::new(stdout);
    let info = match handshake(&mut stdout).await {
        Ok(info) => info,
        Err(reason) => {
            let status = reap(&mut child).await;
            let lines = last_lines(relay, &tail).await;
            tracing::error!(model = %model, pid, status = %describe(status), stderr = %lines, error = %reason, "the model's worker process did not load the model");
            let _ = ready.send(Err(reason));
            return;
        }
    };
    let (frames_tx, frames) = mpsc::channel(READ_QUEUE);
    tokio::spawn(read_frames(stdout, frames_tx));
    let _ = ready.send(Ok(Started { info, pid }));
    let mut routes = Routes::new(model.clone(), to_child, b.stats.clone());
    let mut rx = b.rx;
    let end = serve(&mut routes, &mut rx, frames).await;
    let mut pumps = std::mem::take(&mut routes.tasks);
    match end {
        End::Unloaded => {
            drop(routes);
            let status = match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
                Ok(s) => s.ok(),
                Err(_) => {
                    tracing::warn!(model = %model, pid, "the model's worker did not exit after unloading; killing it");
                    reap(&mut child).await
                }
            };
            tracing::info!(model = %model, pid, status = %describe(status), "model worker process stopped");
        }
        End::Died => {
            let status = reap(&mut child).await;
            let lines = last_lines(relay, &tail).await;
            let exit = describe(status);
            tracing::error!(model = %model, pid, status = %exit, stderr = %lines, "the model's worker process died; its requests fail and the model is loaded again on the next request");
            if let Some(c) = &b.crashes {
                c.record(&model, exit);
            }
            let err = EngineError::ModelCrashed { model: model.clone() };
            routes.fail_all(&err);
            rx.close();
            while let Some(cmd) = rx.recv().await {
                routes.refuse(cmd, &err);
            }
        }
    }
    b.stats.dead.store(true, Ordering::Release);
    // The runtime ends with this function: let every pump deliver what it holds first.
    while pumps.join_next().await.is_some() {}
}

/// The bridge's loop: commands in, frames out, until the model is unloaded or the child dies.
async fn serve(routes: &mut Routes, rx: &mut mpsc::Receiver<Command>, mut frames: mpsc::Receiver<FromChild>) -> End {
    let mut open = true;
    loop {
        tokio::select! {
            msg = frames.recv() => match msg {
                Some(msg) => routes.dispatch(msg),
                None => return End::Died,
            },
            cmd = rx.recv(), if open => match cmd {
                Some(cmd) => routes.submit(cmd).await,
                None => open = false,
            },
        }
        while routes.tasks.try_join_next().is_some() {}
        if !open && routes.is_empty() {
            return End::Unloaded;
        }
    }
}

fn start_child(p: &WorkerProgram) -> std::io::Result<Child> {
    tokio::process::Command::new(&p.program)
        .args(&p.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl+C reaches the server, which drains its
        // requests and then ends the workers, instead of killing them mid-answer.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
}

/// The child's greeting and its first frame: the loaded model, or why it did not load.
async fn handshake(out: &mut (impl AsyncRead + Unpin)) -> Result<BackendInfo, LoadError> {
    let theirs = wire::read_child_opening(out).await.map_err(|_| LoadError::WorkerDied)?;
    if theirs != wire::PROTOCOL_VERSION {
        return Err(LoadError::Protocol { ours: wire::PROTOCOL_VERSION, theirs });
    }
    match wire::read_frame_async::<FromChild>(out).await {
        Ok(Some(FromChild::Ready(info))) => Ok(info),
        Ok(Some(FromChild::LoadFailed(e))) => Err(e),
        _ => Err(LoadError::WorkerDied),
    }
}

/// Waits a moment for a dying child's status, killing it if it lingers.
async fn reap(child: &mut Child) -> Option<ExitStatus> {
    if let Ok(Ok(s)) = tokio::time::timeout(REAP_WAIT, child.wait()).await {
        return Some(s);
    }
    let _ = child.start_kill();
    child.wait().await.ok()
}

/// An exit status in words: the code, or the signal that ended the process.
fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => "unknown".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(sig)) => {
                format!("killed by signal {sig}{}", if s.core_dumped() { " (core dumped)" } else { "" })
            }
            _ => s.to_string(),
        },
    }
}

/// The last lines of the child's stderr, once the relay has read to its end (briefly).
async fn last_lines(relay: tokio::task::JoinHandle<()>, tail: &Mutex<VecDeque<String>>) -> String {
    let _ = tokio::time::timeout(Duration::from_secs(1), relay).await;
    let t = tail.lock().unwrap_or_else(PoisonError::into_inner);
    t.iter().cloned().collect::<Vec<_>>().join("\n")
}

/// Copies the child's log lines to the server's stderr as they come, keeping the last few.
async fn relay_stderr(err: impl AsyncRead + Unpin, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut r = BufReader::new(err);
    let mut buf = [0u8; 4096];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &byte in &buf[..n] {
            if byte == b'\n' {
                keep_line(&mut line, &tail);
            } else if line.len() < MAX_LINE {
                line.push(byte);
            }
        }
    }
    if !line.is_empty() {
        keep_line(&mut line, &tail);
    }
}

fn keep_line(line: &mut Vec<u8>, tail: &Mutex<VecDeque<String>>) {
    use std::io::Write;
    let text = String::from_utf8_lossy(line).into_owned();
    line.clear();
    let _ = writeln!(std::io::stderr(), "{text}");
    let mut t = tail.lock().unwrap_or_else(PoisonError::into_inner);
    if t.len() == TAIL_LINES {
        t.pop_front();
    }
    t.push_back(text);
}

/// Writes the opening, then frames as they come, flushing whenever none is waiting.
async fn write_frames(stdin: ChildStdin, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut w = tokio::io::BufWriter::new(stdin);
    if w.write_all(&wire::PROTOCOL_VERSION.to_le_bytes()).await.is_err() {
        return;
    }
    while let Some(buf) = rx.recv().await {
        if w.write_all(&buf).await.is_err() {
            return;
        }
        if rx.is_empty() && w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// Decodes the child's frames into `tx` until its output ends or breaks (the frames channel
/// then closes, which the bridge reads as the child's death).
async fn read_frames(mut out: impl AsyncRead + Unpin, tx: mpsc::Sender<FromChild>) {
    loop {
        match wire::read_frame_async::<FromChild>(&mut out).await {
            Ok(Some(msg)) => {
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "unreadable output from a model's worker process");
                return;
            }
        }
    }
}

type EmbedResult = Result<EmbedOutput, EngineError>;

/// A generation request in flight: each choice's route to its pump.
struct Generation {
    choices: HashMap<u32, mpsc::Sender<Event>>,
    /// Still counted in `stats.waiting` (until its first event).
    waiting: bool,
}

/// Requests in flight in one worker process, by id.
struct Routes {
    model: String,
    next: u64,
    to_child: mpsc::Sender<Vec<u8>>,
    stats: Arc<WorkerStats>,
    gens: HashMap<u64, Generation>,
    embeds: HashMap<u64, oneshot::Sender<EmbedResult>>,
    pings: HashMap<u64, oneshot::Sender<()>>,
    /// The pumps and embedding waiters, which must finish before the bridge's runtime ends.
    tasks: tokio::task::JoinSet<()>,
}

impl Routes {
    fn new(model: String, to_child: mpsc::Sender<Vec<u8>>, stats: Arc<WorkerStats>) -> Self {
        Self {
            model,
            next: 0,
            to_child,
            stats,
            gens: HashMap::new(),
            embeds: HashMap::new(),
            pings: HashMap::new(),
            tasks: tokio::task::JoinSet::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.gens.is_empty() && self.embeds.is_empty() && self.pings.is_empty()
    }

    fn unwait(&self) {
        self.stats.waiting.fetch_sub(1, Ordering::AcqRel);
    }

    /// Sends a handle's command to the child, with routes for what comes back.
    async fn submit(&mut self, cmd: Command) {
        self.next += 1;
        let id = self.next;
        let msg = match cmd {
            Command::Generate { req, events, forks } => {
                let n = forks.len() as u32;
                let mut choices = HashMap::new();
                for (choice, client) in (0u32..).zip(std::iter::once(events).chain(forks)) {
                    let (tx, rx) = mpsc::channel(EVENT_WINDOW + 1);
                    self.tasks.spawn(pump(rx, client, id, choice, self.to_child.downgrade()));
                    choices.insert(choice, tx);
                }
                self.gens.insert(id, Generation { choices, waiting: true });
                ToChild::Generate { id, req, forks: n }
            }
            Command::Embed { req, reply } => {
                let (tx, rx) = oneshot::channel();
                self.tasks.spawn(await_embed(rx, reply, id, self.to_child.downgrade()));
                self.embeds.insert(id, tx);
                ToChild::Embed { id, req }
            }
            Command::Ping { reply } => {
                self.pings.insert(id, reply);
                ToChild::Ping { id }
            }
        };
        // A failed send means the child is gone: its death fails every route.
        let _ = self.to_child.send(wire::frame(&msg)).await;
    }

    fn dispatch(&mut self, msg: FromChild) {
        match msg {
            FromChild::Event { id, choice, event } => {
                let Some(g) = self.gens.get_mut(&id) else { return };
                if std::mem::take(&mut g.waiting) {
                    self.stats.waiting.fetch_sub(1, Ordering::AcqRel);
                }
                let last = event.is_last();
                if let Some(tx) = g.choices.get(&choice) {
                    // Room is guaranteed by the credit window; a pump that is gone drops it.
                    let _ = tx.try_send(event.into_event(&self.model));
                }
                if last {
                    // The sequence is over: counted out now, before the worker's next
                    // counters arrive, so that a client that reads them at once sees it gone.
                    let _ = self.stats.active.fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| a.checked_sub(1));
                    self.close(id, choice);
                }
            }
            FromChild::Embedded { id, result } => {
                if let Some(tx) = self.embeds.remove(&id) {
                    self.unwait();
                    let _ = self.stats.active.fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| a.checked_sub(1));
                    let _ = tx.send(result.map_err(|e| e.into_error(&self.model)));
                }
            }
            FromChild::Pong { id } => {
                if let Some(tx) = self.pings.remove(&id) {
                    let _ = tx.send(());
                }
            }
            FromChild::Closed { id, choice } => self.close(id, choice),
            FromChild::Stats(s) => self.store(s),
            FromChild::Ready(_) | FromChild::LoadFailed(_) => {
                tracing::warn!(model = %self.model, "a worker announced its model twice");
            }
        }
    }

    /// No more events come for `(id, choice)`: its pump ends once it has delivered the rest.
    fn close(&mut self, id: u64, choice: u32) {
        if self.embeds.remove(&id).is_some() {
            self.unwait();
            return;
        }
        let Some(g) = self.gens.get_mut(&id) else { return };
        g.choices.remove(&choice);
        if g.choices.is_empty() {
            if g.waiting {
                self.unwait();
            }
            self.gens.remove(&id);
        }
    }

    fn store(&self, s: StatsSnapshot) {
        let st = &self.stats;
        st.active.store(s.active as usize, Ordering::Relaxed);
        st.kv_used.store(s.kv_used as usize, Ordering::Relaxed);
        st.kv_cached.store(s.kv_cached as usize, Ordering::Relaxed);
        st.finished.store(s.finished, Ordering::Relaxed);
        st.cancelled.store(s.cancelled, Ordering::Relaxed);
    }

    /// Ends every request in flight with `err` (the child died).
    fn fail_all(&mut self, err: &EngineError) {
        for (_, g) in self.gens.drain() {
            if g.waiting {
                self.stats.waiting.fetch_sub(1, Ordering::AcqRel);
            }
            for tx in g.choices.values() {
                let _ = tx.try_send(Event::Error(err.clone()));
            }
        }
        for (_, tx) in self.embeds.drain() {
            self.stats.waiting.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(Err(err.clone()));
        }
        self.pings.clear();
        self.stats.active.store(0, Ordering::Relaxed);
        self.stats.kv_used.store(0, Ordering::Relaxed);
        self.stats.kv_cached.store(0, Ordering::Relaxed);
    }

    /// Answers a command that never reached the child with `err`.
    fn refuse(&self, cmd: Command, err: &EngineError) {
        match cmd {
            Command::Generate { events, forks, .. } => {
                self.unwait();
                for tx in std::iter::once(events).chain(forks) {
                    let _ = tx.try_send(Event::Error(err.clone()));
                }
            }
            Command::Embed { reply, .. } => {
                self.unwait();
                let _ = reply.send(Err(err.clone()));
            }
            Command::Ping { .. } => {}
        }
    }
}

/// Delivers one choice's events to its client as fast as the client reads, grants the child
/// credit as they are delivered, and cancels the choice when the client goes away.
///
/// It holds the child's input weakly: once the model is unloaded and every route has closed,
/// a pump still feeding a slow client does not keep the worker process alive.
async fn pump(
    mut inner: mpsc::Receiver<Event>,
    client: mpsc::Sender<Event>,
    id: u64,
    choice: u32,
    to_child: ToChildWeak,
) {
    let mut owed = 0u32;
    loop {
        let ev = tokio::select! {
            ev = inner.recv() => ev,
            () = client.closed() => None,
        };
        let Some(ev) = ev else { break };
        let last = matches!(ev, Event::Done { .. } | Event::Error(_));
        let Ok(permit) = client.reserve().await else { break };
        permit.send(ev);
        if last {
            return;
        }
        owed += 1;
        if owed >= CREDIT_BATCH {
            tell(&to_child, &ToChild::Credit { id, choice, n: owed }).await;
            owed = 0;
        }
    }
    if client.is_closed() {
        tell(&to_child, &ToChild::Cancel { id, choice }).await;
    }
}

/// Hands an embedding result to its caller, or cancels the request when the caller goes away.
async fn await_embed(
    inner: oneshot::Receiver<EmbedResult>,
    mut reply: oneshot::Sender<EmbedResult>,
    id: u64,
    to_child: ToChildWeak,
) {
    tokio::select! {
        r = inner => {
            if let Ok(r) = r {
                let _ = reply.send(r);
            }
        }
        () = reply.closed() => {
            tell(&to_child, &ToChild::Cancel { id, choice: 0 }).await;
        }
    }
}

type ToChildWeak = mpsc::WeakSender<Vec<u8>>;

/// Sends `msg` to the child if its input is still open.
async fn tell(to_child: &ToChildWeak, msg: &ToChild) {
    if let Some(tx) = to_child.upgrade() {
        let _ = tx.send(wire::frame(msg)).await;
    }
}
