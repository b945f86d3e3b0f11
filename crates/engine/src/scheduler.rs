//! Pure scheduling decisions: which slot a request takes (prefix reuse) and what goes into the
//! next batch. The worker loop applies them; everything here is synchronous and unit-tested.

/// Length of the common prefix of two token lists.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// What a slot holds between requests.
#[derive(Debug, Clone, Default)]
pub struct SlotState {
    /// Tokens whose KV cells are in the cache for this slot, in order.
    pub cached: Vec<u32>,
    /// A sequence is running in it.
    pub busy: bool,
    /// Step counter of its last use (for least-recently-used choice).
    pub last_used: u64,
}

/// The free slot a prompt should take and how many of its tokens the cache already holds.
/// Picks the longest cached prefix; ties go to the lowest slot number, which keeps running
/// sequences on consecutive ids (llama.cpp splits a batch wherever the ids of per-sequence KV
/// streams are not consecutive). At least one prompt token is always left to evaluate, since its
/// logits are needed.
pub fn pick_slot(slots: &[SlotState], prompt: &[u32]) -> Option<(usize, usize)> {
    slots
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.busy)
        .map(|(i, s)| (i, common_prefix(&s.cached, prompt).min(prompt.len().saturating_sub(1))))
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
}

/// A running sequence as the batch planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqView {
    /// Prompt tokens not yet evaluated (0 once decoding).
    pub prefill_left: usize,
    /// The sequence may not take part this step (its client is not reading).
    pub stalled: bool,
}

/// Tokens each sequence contributes to the next batch, by index into `seqs`.
///
/// Decoding sequences go first, one token each, so running streams keep flowing while a long
/// prompt is admitted; prefilling sequences then share what is left of `budget` in order of
/// arrival, a chunk at a time.
///
/// The last prompt token is always evaluated in a step of its own. A prompt whose prefix is in
/// the cache evaluates only that token, so doing the same on a cache miss makes the logits, and
/// with a fixed seed the text, the same whether or not the cache was hit.
///
/// While any sequence is decoding, prompts get at most `prefill_while_decoding` tokens per step,
/// which bounds how much a long prompt stretches the running streams' inter-token latency.
pub fn plan_batch(seqs: &[SeqView], budget: usize, prefill_while_decoding: usize) -> Vec<(usize, usize)> {
    let mut plan = Vec::new();
    let mut left = budget;
    for (i, s) in seqs.iter().enumerate() {
        if !s.stalled && s.prefill_left == 0 && left > 0 {
            plan.push((i, 1));
            left -= 1;
        }
    }
    if !plan.is_empty() {
        left = left.min(prefill_while_decoding.max(1));
    }
    for (i, s) in seqs.iter().enumerate() {
        if !s.stalled && s.prefill_left > 0 && left > 0 {
            let chunk = if s.prefill_left > 1 { s.prefill_left - 1 } else { 1 };
            let n = chunk.min(left);
            plan.push((i, n));
            left -= n;
        }
    }
    plan
}

/// The decode calls of a planned step: the decode tokens and the prompt chunks go to llama.cpp
/// as two calls when both are present.
///
/// The streams' tokens are then sampled and sent before the prompt chunk runs, each call's
/// cost is measured on its own (what [`StepCosts`] learns from), and the decode call attends
/// only over the running streams' own depth: in one call with per-sequence KV streams, every
/// sequence of a micro-batch is padded to the deepest one's cells.
pub fn split_calls(seqs: &[SeqView], plan: Vec<(usize, usize)>) -> Vec<Vec<(usize, usize)>> {
    let (decode, prompt): (Vec<_>, Vec<_>) = plan.iter().partition(|&&(i, _)| seqs[i].prefill_left == 0);
    if decode.is_empty() || prompt.is_empty() {
        return vec![plan];
    }
    vec![decode, prompt]
}

/// Weight of a new measurement in the moving averages of [`StepCosts`].
const COST_WEIGHT: f64 = 0.25;
/// Prompt tokens of a step while streams decode, before any cost has been measured.
const FIRST_CHUNK: usize = 32;
/// The fewest prompt tokens a step carries while streams decode, so a prompt always advances.
const MIN_CHUNK: usize = 8;

/// Measured step costs of one model's worker: the basis for sizing prompt chunks in time
/// rather than tokens. A chunk of a given size costs more the deeper its prompt already is
/// (attention) and the fewer tokens it has (each call reads all weights), so a fixed token
/// count would stretch the streams' gaps as a long prompt advances.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepCosts {
    /// Milliseconds of a decode call of the running streams (moving average).
    decode_ms: Option<f64>,
    /// Milliseconds per prompt token of the latest prompt calls made beside decoding streams.
    token_ms: Option<f64>,
}

fn blend(old: Option<f64>, new: f64) -> Option<f64> {
    if !new.is_finite() || new < 0.0 {
        return old;
    }
    Some(old.map_or(new, |o| o + COST_WEIGHT * (new - o)))
}

impl StepCosts {
    /// A decode call of the running streams took `ms`.
    pub fn decode(&mut self, ms: f64) {
        self.decode_ms = blend(self.decode_ms, ms);
    }

    /// A prompt call of `tokens` tokens, made while streams were decoding, took `ms`.
    pub fn prompt(&mut self, tokens: usize, ms: f64) {
        if tokens > 0 {
            self.token_ms = blend(self.token_ms, ms / tokens as f64);
        }
    }

    /// Prompt tokens the next step may carry beside decoding streams so that the step takes
    /// about `stretch` times a decode call (the streams' gap while a prompt is admitted), at
    /// least [`MIN_CHUNK`] and at most `cap`.
    pub fn prompt_budget(&self, stretch: f64, cap: usize) -> usize {
        let n = match (self.decode_ms, self.token_ms) {
            (Some(d), Some(t)) if t > 0.0 => ((stretch - 1.0).max(0.0) * d / t).floor().min(1e9) as usize,
            _ => FIRST_CHUNK,
        };
        n.max(MIN_CHUNK).min(cap.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(cached: &[u32], busy: bool, last_used: u64) -> SlotState {
        SlotState { cached: cached.to_vec(), busy, last_used }
    }

    #[test]
    fn longest_prefix_slot_wins_and_one_token_is_left() {
        let slots = [slot(&[1, 2], false, 5), slot(&[1, 2, 3, 4], false, 1), slot(&[1, 2, 3, 4, 5], true, 0)];
        assert_eq!(pick_slot(&slots, &[1, 2, 3, 4, 9]), Some((1, 4)));
        assert_eq!(pick_slot(&slots, &[1, 2, 3, 4]), Some((1, 3)));
    }

    #[test]
    fn ties_go_to_the_lowest_slot() {
        let slots = [slot(&[7], true, 9), slot(&[8], false, 9), slot(&[9], false, 2)];
        assert_eq!(pick_slot(&slots, &[1, 2]), Some((1, 0)));
    }

    #[test]
    fn no_free_slot() {
        assert_eq!(pick_slot(&[slot(&[], true, 0)], &[1]), None);
    }

    #[test]
    fn decode_tokens_first_then_prefill_chunks() {
        let seqs = [
            SeqView { prefill_left: 100, stalled: false },
            SeqView { prefill_left: 0, stalled: false },
            SeqView { prefill_left: 0, stalled: true },
            SeqView { prefill_left: 30, stalled: false },
            SeqView { prefill_left: 0, stalled: false },
        ];
        assert_eq!(plan_batch(&seqs, 64, 512), vec![(1, 1), (4, 1), (0, 62)]);
        assert_eq!(plan_batch(&seqs, 200, 512), vec![(1, 1), (4, 1), (0, 99), (3, 29)]);
        let last = [SeqView { prefill_left: 1, stalled: false }];
        assert_eq!(plan_batch(&last, 200, 512), vec![(0, 1)], "the last prompt token goes alone");
        assert_eq!(plan_batch(&seqs, 1, 512), vec![(1, 1)]);
    }

    #[test]
    fn decode_tokens_and_prompt_chunks_are_separate_calls() {
        let decoding = SeqView { prefill_left: 0, stalled: false };
        let long = SeqView { prefill_left: 100, stalled: false };
        let seqs = [long, decoding, decoding];
        let plan = plan_batch(&seqs, 512, 32);
        assert_eq!(split_calls(&seqs, plan), vec![vec![(1, 1), (2, 1)], vec![(0, 32)]]);
        assert_eq!(split_calls(&[long], plan_batch(&[long], 512, 32)), vec![vec![(0, 99)]], "a lone prompt: one call");
        assert_eq!(split_calls(&[decoding], vec![(0, 1)]), vec![vec![(0, 1)]]);
    }

    #[test]
    fn prompt_chunks_are_sized_in_time_from_measured_costs() {
        let mut c = StepCosts::default();
        assert_eq!(c.prompt_budget(8.0, 512), FIRST_CHUNK, "nothing measured yet");
        c.decode(40.0);
        c.prompt(32, 320.0);
        // 10 ms a prompt token; the step may take 8 x 40 ms, 40 of them the decode call.
        assert_eq!(c.prompt_budget(8.0, 512), 28);
        assert_eq!(c.prompt_budget(8.0, 16), 16, "the cap holds");
        assert_eq!(c.prompt_budget(1.0, 512), MIN_CHUNK, "a prompt always advances");
        // Deeper into the prompt its tokens cost more: the chunk shrinks to keep the step's time.
        for _ in 0..20 {
            c.prompt(28, 28.0 * 20.0);
        }
        assert_eq!(c.prompt_budget(8.0, 512), 14);
        c.decode(f64::NAN);
        c.prompt(10, -1.0);
        assert_eq!(c.prompt_budget(8.0, 512), 14, "nonsense measurements are ignored");
    }

    #[test]
    fn prefill_is_capped_only_while_streams_are_decoding() {
        let decoding = SeqView { prefill_left: 0, stalled: false };
        let long = SeqView { prefill_left: 2048, stalled: false };
        assert_eq!(plan_batch(&[decoding, long], 512, 32), vec![(0, 1), (1, 32)]);
        assert_eq!(plan_batch(&[long], 512, 32), vec![(0, 512)], "alone, a prompt takes the whole batch");
        let stalled = SeqView { prefill_left: 0, stalled: true };
        assert_eq!(plan_batch(&[stalled, long], 512, 32), vec![(1, 512)]);
    }
}
