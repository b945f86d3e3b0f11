//! The worker loop of an embedding model: inputs of all waiting requests are packed into
//! decode calls under a token budget, so one call serves many inputs and many requests.
//!
//! Each step: take every command off the channel (pings are answered at once), drop
//! requests whose caller is gone, pick the next inputs ([`embed::plan`]: one from every waiting
//! request first, then in arrival order) up to the token budget (attention over a packed call
//! grows with its square, so a modest budget is faster than one huge call),
//! evaluate them in one call, and answer each request once all its inputs are done.

use crate::backend::{Backend, BackendInfo, Token};
use crate::command::{self, Command};
use crate::embed::{self, EmbedOutput};
use crate::error::{DecodeError, EngineError, Role};
use crate::worker::WorkerStats;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::Instant;
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<EmbedOutput, EngineError>>;

/// Requests the worker holds at once. The server bounds them sooner (every request holds an
/// admission permit, `--max-concurrent-requests`); this bound makes the worker's own queue finite
/// for any caller: beyond it a request is refused as overloaded.
const MAX_JOBS: usize = 4096;

/// A request whose inputs are tokenized and being evaluated.
struct Job {
    inputs: Vec<Vec<Token>>,
    /// Outputs so far, by input index.
    outputs: Vec<Vec<f32>>,
    /// Inputs handed to the backend so far (they are evaluated in order).
    next: usize,
    reply: Reply,
}

struct EmbedWorker<'b> {
    /// The model's id, for errors.
    model: String,
    backend: &'b mut dyn Backend,
    info: BackendInfo,
    /// Tokens packed into one call (a longer input goes alone).
    budget: usize,
    /// Requests in arrival order, at most [`MAX_JOBS`].
    jobs: VecDeque<Job>,
    stats: &'b WorkerStats,
}

/// Runs the loop until the command channel closes and no request is left.
pub(crate) fn run(model: &str, backend: &mut dyn Backend, rx: &Receiver<Command>, stats: &WorkerStats, budget: usize) {
    let info = backend.info();
    let budget = budget.clamp(1, info.n_batch.max(1));
    let model = model.to_string();
    let mut w = EmbedWorker { model, backend, info, budget, jobs: VecDeque::new(), stats };
    while command::drain(rx, w.jobs.is_empty(), |cmd| w.take(cmd)) {
        w.drop_cancelled();
        w.step();
        w.stats.active.store(w.jobs.len(), Ordering::Relaxed);
    }
}

impl EmbedWorker<'_> {
    fn take(&mut self, cmd: Command) {
        match cmd {
            Command::Ping { reply } => {
                let _ = reply.send(());
            }
            Command::Embed { req, reply } => {
                // Inputs were tokenized and fitted on the request's side (`EmbedRequest::validate`).
                self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
                if self.jobs.len() >= MAX_JOBS {
                    let _ = reply.send(Err(EngineError::Overloaded { model: self.model.clone() }));
                    self.finished(false);
                    return;
                }
                let inputs = req.inputs;
                let outputs = Vec::with_capacity(inputs.len());
                self.jobs.push_back(Job { inputs, outputs, next: 0, reply });
            }
            Command::Generate { events, .. } => {
                self.stats.waiting.fetch_sub(1, Ordering::Relaxed);
                let e = EngineError::wrong_kind(Role::Embedder, Role::Generator);
                let _ = events.try_send(crate::request::Event::Error(e));
            }
        }
    }

    fn drop_cancelled(&mut self) {
        let before = self.jobs.len();
        self.jobs.retain(|j| !j.reply.is_closed());
        for _ in self.jobs.len()..before {
            self.finished(true);
        }
    }

    /// Evaluates the next inputs of the waiting requests ([`embed::plan`]) in one call.
    fn step(&mut self) {
        let remaining: Vec<Vec<usize>> =
            self.jobs.iter().map(|j| j.inputs[j.next..].iter().map(Vec::len).collect()).collect();
        let lens: Vec<&[usize]> = remaining.iter().map(Vec::as_slice).collect();
        let take = embed::plan(&lens, self.budget, self.info.n_slots.max(1));
        let taken: Vec<(usize, usize)> = take
            .iter()
            .enumerate()
            .flat_map(|(j, &k)| (self.jobs[j].next..self.jobs[j].next + k).map(move |i| (j, i)))
            .collect();
        if taken.is_empty() {
            return;
        }
        let inputs: Vec<&[Token]> = taken.iter().map(|&(j, i)| self.jobs[j].inputs[i].as_slice()).collect();
        let (n, tokens) = (inputs.len(), inputs.iter().map(|t| t.len()).sum::<usize>());
        let t0 = Instant::now();
        let result = self.backend.embed(&inputs);
        tracing::trace!(inputs = n, tokens, ms = t0.elapsed().as_secs_f64() * 1000.0, "embed step");
        match result {
            Ok(vectors) if vectors.len() == n => {
                // Each request's inputs were taken in order, so its outputs append in order.
                for ((j, _), v) in taken.iter().zip(vectors) {
                    self.jobs[*j].outputs.push(v);
                    self.jobs[*j].next += 1;
                }
                self.answer_done();
            }
            Ok(v) => self.fail_taken(&taken, DecodeError::NoEmbedding(v.len())),
            Err(e) => self.fail_taken(&taken, e),
        }
    }

    /// Answers the requests whose inputs are all done.
    fn answer_done(&mut self) {
        let mut j = 0;
        while j < self.jobs.len() {
            if self.jobs[j].outputs.len() < self.jobs[j].inputs.len() {
                j += 1;
                continue;
            }
            let Some(job) = self.jobs.remove(j) else { break };
            // Idle before the caller hears of it (see the causal worker).
            self.stats.active.store(self.jobs.len(), Ordering::Relaxed);
            let prompt_tokens = job.inputs.iter().map(|t| t.len() as u32).sum();
            let delivered = job.reply.send(Ok(EmbedOutput { vectors: job.outputs, prompt_tokens })).is_ok();
            self.finished(!delivered);
        }
    }

    fn fail_taken(&mut self, taken: &[(usize, usize)], cause: DecodeError) {
        tracing::error!(error = %cause, "embedding batch failed");
        let mut failed: Vec<usize> = taken.iter().map(|&(j, _)| j).collect();
        failed.dedup();
        for j in failed.into_iter().rev() {
            if let Some(job) = self.jobs.remove(j) {
                let _ = job.reply.send(Err(EngineError::Decode(cause.clone())));
                self.finished(false);
            }
        }
    }

    fn finished(&self, cancelled: bool) {
        self.stats.finished.fetch_add(1, Ordering::Relaxed);
        if cancelled {
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}
