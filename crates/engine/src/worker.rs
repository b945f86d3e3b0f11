//! The worker loop: one thread per loaded model runs steps over its active sequences.
//!
//! Each step: take new requests while a slot is free, drop sequences whose client is gone
//! (freeing their KV cells), plan one batch across all runnable sequences, decode it, sample,
//! and send events. The loop never waits on a client: a sequence whose client does not read is
//! left out of batches until its channel has room.

use crate::backend::{Backend, BackendInfo, BatchItem, Token};
use crate::command::{self, Command};
use crate::error::EngineError;
use crate::request::{Event, TokenLogprob, TopLogprob, ValidGenerateRequest};
use crate::scheduler::{self, SeqView, SlotState};
use crate::sequence::{Next, Sequence};
use crate::stop::StopMatcher;
use crate::utf8::Utf8Decoder;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Counters a worker shares with the async side (read by health, tests and metrics).
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Sequences running in slots.
    pub active: AtomicUsize,
    /// Requests submitted but not yet started by the worker (the queue bound applies to it).
    pub waiting: AtomicUsize,
    /// False once the worker thread has ended (failed or unloaded).
    pub dead: AtomicBool,
    /// Requests finished (done, failed or cancelled).
    pub finished: AtomicU64,
    /// Requests cancelled because their client went away.
    pub cancelled: AtomicU64,
    /// KV cache cells held by running sequences.
    pub kv_used: AtomicUsize,
    /// KV cache cells of idle slots' cached prefixes (reused by a request that starts the
    /// same way, dropped when a new request needs the room).
    pub kv_cached: AtomicUsize,
}

/// How long to wait for commands when every sequence is stalled on a slow client.
const STALL_WAIT: Duration = Duration::from_millis(2);

mod fork;

/// A generation request off the command channel: its events, and its other choices' (n > 1).
/// Taken off the queue, it is held until the KV cache has room for it.
struct Queued {
    req: ValidGenerateRequest,
    events: mpsc::Sender<Event>,
    forks: Vec<mpsc::Sender<Event>>,
}

struct Worker<'b> {
    backend: &'b mut dyn Backend,
    info: BackendInfo,
    slots: Vec<SlotState>,
    active: Vec<Sequence>,
    /// Requests taken off the channel, in arrival order; bounded by the handle, which refuses
    /// work once `stats.waiting` reaches the queue limit. The channel is drained every step so
    /// pings are answered without waiting for a free slot.
    pending: VecDeque<Queued>,
    /// At most one request waits for KV room; the rest wait behind it in `pending`, so
    /// requests are admitted in arrival order.
    held: Option<Queued>,
    /// Choices waiting for their first choice's prompt (n > 1), in reserved slots.
    forks: Vec<fork::ForkPlan>,
    stats: &'b WorkerStats,
    cfg: WorkerConfig,
    step: u64,
    /// What steps have cost, for sizing prompt chunks.
    costs: scheduler::StepCosts,
}

/// Scheduling settings of a worker.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct WorkerConfig {
    /// Most prompt tokens per step while other sequences are decoding.
    pub(crate) prefill_chunk: usize,
    /// Tokens packed into one embedding decode call.
    pub(crate) embed_budget: usize,
    /// While streams decode, a step admitting a prompt chunk is sized to take about this many
    /// times a decode call.
    pub(crate) prefill_stretch: f64,
}

/// Runs the loop until the command channel closes and no sequence is left.
pub(crate) fn run(backend: &mut dyn Backend, rx: &Receiver<Command>, stats: &WorkerStats, cfg: WorkerConfig) {
    let info = backend.info();
    let slots = vec![SlotState::default(); info.n_slots.max(1)];
    let mut w = Worker {
        backend,
        info,
        slots,
        active: Vec::new(),
        pending: VecDeque::new(),
        held: None,
        forks: Vec::new(),
        stats,
        cfg,
        step: 0,
        costs: scheduler::StepCosts::default(),
    };
    while command::drain(rx, w.is_idle(), |cmd| w.take(cmd)) {
        w.try_admit_held();
        while w.held.is_none() && w.active.len() < w.slots.len() {
            let Some(q) = w.pending.pop_front() else { break };
            w.accept(q);
        }
        w.drop_cancelled();
        if !w.step() {
            // Every sequence is stalled on a slow client: wait a little instead of spinning.
            match rx.recv_timeout(STALL_WAIT) {
                Ok(cmd) => w.take(cmd),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
        }
        w.stats.active.store(w.active.len(), Ordering::Relaxed);
        let cells = |busy: bool| w.slots.iter().filter(|s| s.busy == busy).map(|s| s.cached.len()).sum();
        w.stats.kv_used.store(cells(true), Ordering::Relaxed);
        w.stats.kv_cached.store(cells(false), Ordering::Relaxed);
    }
}

impl Worker<'_> {
    fn is_idle(&self) -> bool {
        self.active.is_empty() && self.held.is_none() && self.pending.is_empty()
    }

    /// Takes a command off the channel: pings are answered now, generation is queued.
    fn take(&mut self, cmd: Command) {
        match cmd {
            Command::Ping { reply } => {
                let _ = reply.send(());
            }
            Command::Generate { req, events, forks } => self.pending.push_back(Queued { req, events, forks }),
            Command::Embed { reply, .. } => {
                self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
                let _ = reply
                    .send(Err(EngineError::wrong_kind(crate::error::Role::Generator, crate::error::Role::Embedder)));
            }
        }
    }

    /// Starts a queued request (tokenized and checked by its handle): admit it to a free slot,
    /// or hold it until the KV cache has room.
    fn accept(&mut self, q: Queued) {
        self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
        if q.events.is_closed() {
            self.finished(true);
            return;
        }
        self.held = Some(q);
        self.try_admit_held();
        self.stats.active.store(self.active.len(), Ordering::Relaxed);
    }

    /// KV cells reserved by running sequences (prompt + max_tokens each).
    fn reserved(&self) -> usize {
        self.active.iter().map(|s| s.reserved).sum()
    }

    /// Admits the held request if a slot is free and the KV cache has room for its prompt and
    /// completion, evicting idle slots' cached prefixes (least recently used first) to make room.
    fn try_admit_held(&mut self) {
        let Some(h) = self.held.as_ref() else { return };
        if h.events.is_closed() {
            self.held = None;
            self.finished(true);
            return;
        }
        let Some((slot, reuse)) = scheduler::pick_slot(&self.slots, &h.req.prompt) else { return };
        let Some(fork_slots) = self.fork_slots(slot, h.forks.len()) else { return };
        // Every choice may fill its context; a copied prompt shares cells only in a unified
        // cache, so count it per choice.
        let need = (h.req.prompt.len() + h.req.max_tokens as usize) * (1 + fork_slots.len());
        for &f in &fork_slots {
            self.backend.truncate_kv(f, 0);
            self.slots[f].cached.clear();
        }
        let mut idle: Vec<usize> = (0..self.slots.len())
            .filter(|&i| i != slot && !self.slots[i].busy && !self.slots[i].cached.is_empty())
            .collect();
        idle.sort_by_key(|&i| self.slots[i].last_used);
        let mut used = self.reserved() + idle.iter().map(|&i| self.slots[i].cached.len()).sum::<usize>();
        for i in idle {
            if used + need <= self.info.n_kv as usize {
                break;
            }
            used -= self.slots[i].cached.len();
            self.backend.truncate_kv(i, 0);
            self.slots[i].cached.clear();
        }
        if used + need > self.info.n_kv as usize {
            return;
        }
        if let Some(h) = self.held.take() {
            self.admit(slot, reuse, h, fork_slots);
        }
    }

    /// Starts the held request in `slot`, reusing the first `reuse` cached tokens.
    fn admit(&mut self, slot: usize, mut reuse: usize, h: Queued, fork_slots: Vec<usize>) {
        let Queued { mut req, events, forks } = h;
        let (prompt, max_tokens) = (std::mem::take(&mut req.prompt), req.max_tokens);
        if !self.backend.truncate_kv(slot, reuse as u32) {
            self.backend.truncate_kv(slot, 0);
            reuse = 0;
        }
        let s = &mut self.slots[slot];
        s.cached.truncate(reuse);
        s.busy = true;
        s.last_used = self.step;
        let started = self.backend.start_sequence(slot, &req.sampling);
        let seq = new_sequence(slot, reuse, &req, prompt, max_tokens, events);
        if let Err(e) = started {
            // Before any token: the client gets a 400, the slot keeps its cached prefix.
            for f in &forks {
                let _ = f.try_send(Event::Error(EngineError::InvalidGrammar(e.clone())));
            }
            seq.send(Event::Error(EngineError::InvalidGrammar(e)));
            self.release(seq, false);
        } else if seq.send(Event::Started { prompt_tokens: seq.prompt.len() as u32, cached_tokens: reuse as u32 }) {
            self.plan_forks(slot, &req, &seq, fork_slots, forks);
            self.active.push(seq);
        } else {
            self.release(seq, true);
        }
    }

    /// Frees sequences whose client has gone away, and their KV cells.
    fn drop_cancelled(&mut self) {
        let mut i = 0;
        while i < self.active.len() {
            if self.active[i].events.is_closed() {
                let seq = self.active.swap_remove(i);
                self.release(seq, true);
            } else {
                i += 1;
            }
        }
    }

    /// Ends a sequence. A cancelled or failed one loses its KV cells; a finished one leaves
    /// them for the next request with the same prefix.
    fn release(&mut self, seq: Sequence, clear: bool) {
        self.drop_forks(seq.slot);
        let slot = &mut self.slots[seq.slot];
        slot.busy = false;
        slot.last_used = self.step;
        if clear {
            self.backend.truncate_kv(seq.slot, 0);
            slot.cached.clear();
        }
        self.finished(clear);
    }

    fn finished(&self, cancelled: bool) {
        self.stats.finished.fetch_add(1, Ordering::Relaxed);
        if cancelled {
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs one batch. Returns false when nothing could run.
    fn step(&mut self) -> bool {
        self.step += 1;
        let views: Vec<SeqView> = self
            .active
            .iter()
            .map(|s| SeqView { prefill_left: s.prefill_left(), stalled: s.events.capacity() < 3 })
            .collect();
        let chunk = self.costs.prompt_budget(self.cfg.prefill_stretch, self.cfg.prefill_chunk);
        let plan = scheduler::plan_batch(&views, self.info.n_batch, chunk);
        if plan.is_empty() {
            return false;
        }
        let decoding = plan.iter().any(|&(i, _)| views[i].prefill_left == 0);
        let calls = scheduler::split_calls(&views, plan);
        let mixed = calls.len() > 1;
        let mut outcomes = Vec::new();
        for (k, call) in calls.iter().enumerate() {
            match self.run_call(call, &mut outcomes) {
                Ok(ms) if k == 0 && decoding => self.costs.decode(ms),
                Ok(ms) if mixed => self.costs.prompt(call.iter().map(|&(_, n)| n).sum(), ms),
                Ok(_) => {}
                Err(failed) => {
                    outcomes.extend(failed);
                    break;
                }
            }
        }
        self.retire(outcomes);
        true
    }

    /// Evaluates one decode call of a step and samples its rows; outcomes are retired by the
    /// caller once the whole step has run, so indices into `active` stay valid between calls.
    /// Returns the milliseconds the decode took, or on failure the outcomes of the call's
    /// sequences.
    fn run_call(
        &mut self,
        plan: &[(usize, usize)],
        outcomes: &mut Vec<(usize, Outcome)>,
    ) -> Result<f64, Vec<(usize, Outcome)>> {
        let (items, rows) = self.build_batch(plan);
        let t0 = Instant::now();
        let decoded = self.backend.decode(&items);
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        tracing::trace!(tokens = items.len(), seqs = plan.len(), ms, "decode call");
        if let Err(cause) = decoded {
            tracing::error!(error = %cause, tokens = items.len(), "decode failed");
            let err = EngineError::Decode(cause);
            return Err(plan.iter().map(|&(i, _)| (i, Outcome::Failed(err.clone()))).collect());
        }
        for item in &items {
            self.slots[item.slot].cached.push(item.token);
        }
        for &(i, n) in plan {
            let s = &mut self.active[i];
            if s.pending.take().is_none() {
                s.n_eval += n;
            }
        }
        let mut rows = rows;
        rows.extend(self.start_forks(&rows));
        outcomes.extend(rows.into_iter().map(|(i, row)| (i, Outcome::Next(self.sample(i, row)))));
        Ok(ms)
    }

    /// The batch items for a plan, and (sequence index, batch row) of each row with logits.
    /// Items are ordered by slot, so llama.cpp can put consecutive sequences in one micro-batch.
    fn build_batch(&self, plan: &[(usize, usize)]) -> (Vec<BatchItem>, Vec<(usize, usize)>) {
        let mut plan = plan.to_vec();
        plan.sort_by_key(|&(i, _)| self.active[i].slot);
        let mut items = Vec::new();
        let mut rows = Vec::new();
        for &(i, n) in &plan {
            let s = &self.active[i];
            let base = self.slots[s.slot].cached.len() as u32;
            if let Some(tok) = s.pending {
                rows.push((i, items.len()));
                items.push(BatchItem { token: tok, pos: base, slot: s.slot, logits: true });
                continue;
            }
            let done = s.n_eval + n == s.prompt.len();
            for (k, &tok) in s.prompt[s.n_eval..s.n_eval + n].iter().enumerate() {
                let last = done && k + 1 == n;
                if last {
                    rows.push((i, items.len()));
                }
                items.push(BatchItem { token: tok, pos: base + k as u32, slot: s.slot, logits: last });
            }
        }
        (items, rows)
    }

    fn sample(&mut self, i: usize, row: usize) -> Next {
        let slot = self.active[i].slot;
        let tok = self.backend.sample(slot, row);
        let piece = self.backend.piece(tok);
        let eog = self.backend.is_eog(tok);
        if let (Some(k), false) = (self.active[i].logprobs.as_ref().map(|l| l.top), eog) {
            let lp = self.logprob(row, tok, &piece, k);
            if let Some(l) = self.active[i].logprobs.as_mut() {
                l.hold(lp);
            }
        }
        // The sampled token needs one more KV cell before the next one can be sampled.
        let left = (self.info.n_ctx as usize).saturating_sub(self.slots[slot].cached.len() + 1);
        self.active[i].on_token(tok, &piece, eog, left)
    }

    /// A sampled token's log-probability report.
    fn logprob(&self, row: usize, tok: Token, piece: &[u8], top: usize) -> TokenLogprob {
        let (logprob, alts) = self.backend.logprobs(row, tok, top);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let top = alts
            .into_iter()
            .map(|(t, l)| {
                let bytes = self.backend.piece(t);
                TopLogprob { token: text(&bytes), bytes, logprob: l }
            })
            .collect();
        TokenLogprob { token: text(piece), bytes: piece.to_vec(), logprob, top }
    }

    /// Removes finished, failed and cancelled sequences (highest index first, so indices stay
    /// valid). A sequence appears at most once: a failed call ends the step.
    fn retire(&mut self, mut outcomes: Vec<(usize, Outcome)>) {
        outcomes.sort_by_key(|o| std::cmp::Reverse(o.0));
        outcomes.dedup_by_key(|o| o.0);
        for (i, outcome) in outcomes {
            let next = match outcome {
                Outcome::Next(next) => next,
                Outcome::Failed(err) => {
                    let seq = self.active.swap_remove(i);
                    seq.send(Event::Error(err));
                    self.release(seq, true);
                    continue;
                }
            };
            match next {
                Next::Continue => {}
                Next::Cancelled => {
                    let seq = self.active.swap_remove(i);
                    self.release(seq, true);
                }
                Next::Finished(finish) => {
                    let seq = self.active.swap_remove(i);
                    // Idle before the client hears of it, so its next request never sees a
                    // busy model (eviction, unloading).
                    self.stats.active.store(self.active.len(), Ordering::Relaxed);
                    let completion = seq.completion();
                    let delivered = seq.send(Event::Done { finish, completion });
                    self.release(seq, !delivered);
                }
            }
        }
    }
}

/// What became of a sequence in a step.
enum Outcome {
    /// It sampled a token.
    Next(Next),
    /// Its decode call failed.
    Failed(EngineError),
}

/// A sequence for `req` in `slot`, with the first `reuse` prompt tokens already in its cache.
fn new_sequence(
    slot: usize,
    reuse: usize,
    req: &ValidGenerateRequest,
    prompt: Vec<Token>,
    max_tokens: u32,
    events: mpsc::Sender<Event>,
) -> Sequence {
    Sequence {
        slot,
        n_eval: reuse,
        pending: None,
        max_tokens,
        reserved: prompt.len() + max_tokens as usize,
        ignore_eos: req.ignore_eos,
        generated: 0,
        reported: 0,
        cached: reuse as u32,
        decoder: Utf8Decoder::default(),
        stop: StopMatcher::new(req.stop.clone()),
        events,
        admitted: Instant::now(),
        first_token: None,
        last_token: None,
        logprobs: req.logprobs.map(|k| crate::sequence::Logprobs::new(k as usize)),
        prompt,
    }
}
