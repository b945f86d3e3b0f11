//! Several choices from one prompt (`n > 1`): the other choices' slots are reserved when the
//! request is admitted; once the first choice has evaluated the prompt, its KV cells are copied
//! to them and every choice samples its first token from the same logits, each with its own
//! sampler and seed. The prompt is evaluated once.

use super::{new_sequence, Worker};
use crate::backend::Token;
use crate::error::EngineError;
use crate::request::{Event, ValidGenerateRequest};
use crate::sequence::Sequence;
use tokio::sync::mpsc;

/// The choices of one request still waiting for its prompt.
pub(super) struct ForkPlan {
    /// The slot of the choice that evaluates the prompt.
    main: usize,
    req: ValidGenerateRequest,
    prompt: Vec<Token>,
    max_tokens: u32,
    /// Reserved slot and event sender of each further choice.
    forks: Vec<(usize, mpsc::Sender<Event>)>,
}

impl Worker<'_> {
    /// `n` free slots besides `main` for further choices (those with the least cached first),
    /// or `None` while there are not enough.
    pub(super) fn fork_slots(&self, main: usize, n: usize) -> Option<Vec<usize>> {
        let mut free: Vec<usize> = (0..self.slots.len()).filter(|&i| i != main && !self.slots[i].busy).collect();
        if free.len() < n {
            return None;
        }
        free.sort_by_key(|&i| (self.slots[i].cached.len(), self.slots[i].last_used));
        free.truncate(n);
        Some(free)
    }

    /// Reserves the further choices' slots of a request just admitted in `main`.
    pub(super) fn plan_forks(
        &mut self,
        main: usize,
        req: &ValidGenerateRequest,
        seq: &Sequence,
        slots: Vec<usize>,
        senders: Vec<mpsc::Sender<Event>>,
    ) {
        if senders.is_empty() {
            return;
        }
        let started = Event::Started { prompt_tokens: seq.prompt.len() as u32, cached_tokens: 0 };
        for (&slot, events) in slots.iter().zip(&senders) {
            self.slots[slot].busy = true;
            self.slots[slot].last_used = self.step;
            let _ = events.try_send(started.clone());
        }
        let forks = slots.into_iter().zip(senders).collect();
        let plan = ForkPlan { main, req: req.clone(), prompt: seq.prompt.clone(), max_tokens: seq.max_tokens, forks };
        self.forks.push(plan);
    }

    /// Frees the reserved slots of choices whose first choice ended before its prompt did.
    pub(super) fn drop_forks(&mut self, main: usize) {
        let Some(at) = self.forks.iter().position(|p| p.main == main) else { return };
        let plan = self.forks.swap_remove(at);
        for (slot, events) in plan.forks {
            self.slots[slot].busy = false;
            let _ = events.try_send(Event::Error(EngineError::WorkerFailed));
            self.finished(true);
        }
    }

    /// Starts the further choices of sequences whose prompt this step completed; returns
    /// (sequence index, batch row) for each one that samples from the shared logits now.
    pub(super) fn start_forks(&mut self, rows: &[(usize, usize)]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for &(i, row) in rows {
            let s = &self.active[i];
            if s.generated != 0 || s.n_eval != s.prompt.len() {
                continue;
            }
            let Some(at) = self.forks.iter().position(|p| p.main == s.slot) else { continue };
            let mut plan = self.forks.swap_remove(at);
            for (k, (slot, events)) in std::mem::take(&mut plan.forks).into_iter().enumerate() {
                if let Some(idx) = self.start_fork(&plan, slot, k, events) {
                    out.push((idx, row));
                }
            }
        }
        out
    }

    /// Starts one further choice in `slot` from a copy of `main`'s cells; its index in
    /// `active` when it samples now, `None` when it must evaluate the prompt itself (no copy)
    /// or could not start.
    fn start_fork(&mut self, plan: &ForkPlan, slot: usize, k: usize, events: mpsc::Sender<Event>) -> Option<usize> {
        let ForkPlan { main, req, prompt, max_tokens, .. } = plan;
        let (main, max_tokens) = (*main, *max_tokens);
        let mut params = req.sampling.clone();
        params.seed = params.seed.wrapping_add(k as u32 + 1);
        if let Err(e) = self.backend.start_sequence(slot, &params) {
            let _ = events.try_send(Event::Error(EngineError::InvalidGrammar(e)));
            self.slots[slot].busy = false;
            self.finished(false);
            return None;
        }
        let copied = self.backend.copy_kv(main, slot);
        let reuse = if copied { prompt.len() } else { 0 };
        self.slots[slot].cached = if copied { self.slots[main].cached.clone() } else { Vec::new() };
        self.active.push(new_sequence(slot, reuse, req, prompt.to_vec(), max_tokens, events));
        copied.then_some(self.active.len() - 1)
    }
}
