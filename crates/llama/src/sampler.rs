//! Sampling: the chain of a request's parameters, the grammar of structured output (pre-filtered
//! where that is exact), and tool grammars engaged at their trigger.

use hearth_engine::sampling::SamplingParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;
use llama_cpp_2::token::LlamaToken;

/// Feeds a freely sampled token to a slot's lazy grammar; engages it at its trigger.
pub(crate) fn watch_trigger(s: &mut SlotSampler, model: &LlamaModel, t: LlamaToken) {
    let Some(l) = s.lazy.as_mut() else { return };
    let piece = String::from_utf8_lossy(&model.vocab().token_to_piece(t, true, None)).into_owned();
    match l.push(model, t, &piece) {
        Some(Ok(g)) => {
            s.grammar = Some(g);
            s.lazy = None;
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "tool grammar not engaged; the answer goes on unconstrained");
            s.lazy = None;
        }
        None if !l.alive() => s.lazy = None,
        None => {}
    }
}

/// A slot's samplers: the chain of the request's parameters and, for structured output, the
/// grammar that filters it.
pub(crate) struct SlotSampler {
    pub(crate) chain: LlamaSampler,
    pub(crate) grammar: Option<LlamaSampler>,
    /// A lazy grammar waiting for its trigger (tool calls under `auto`).
    pub(crate) lazy: Option<crate::lazy::Lazy>,
    /// What says when the pre-filter is exact.
    pub(crate) tail: Tail,
}

/// The sampler chain of a request's parameters for `model` (a context of `n_ctx` tokens).
pub(crate) fn chain(model: &LlamaModel, n_ctx: u32, p: &SamplingParams) -> LlamaSampler {
    let n_vocab = model.n_vocab();
    let mut chain = Vec::new();
    if !p.logit_bias.is_empty() {
        let biases: Vec<LlamaLogitBias> = p
            .logit_bias
            .iter()
            .filter(|(t, _)| *t < u32::try_from(model.n_vocab()).unwrap_or(0))
            .map(|&(t, b)| LlamaLogitBias::new(LlamaToken(t as i32), b))
            .collect();
        chain.push(LlamaSampler::logit_bias(n_vocab, &biases));
    }
    if p.repeat_penalty != 1.0 || p.presence_penalty != 0.0 || p.frequency_penalty != 0.0 {
        chain.push(LlamaSampler::penalties(
            n_vocab,
            i32::try_from(p.penalty_last_n.min(n_ctx)).unwrap_or(i32::MAX),
            p.repeat_penalty,
            p.frequency_penalty,
            p.presence_penalty,
        ));
    }
    if p.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
        return LlamaSampler::chain(chain, true);
    }
    if p.top_k > 0 {
        chain.push(LlamaSampler::top_k(p.top_k.min(i32::MAX as u32) as i32));
    }
    if p.top_p < 1.0 {
        chain.push(LlamaSampler::top_p(p.top_p, 1));
    }
    if p.min_p > 0.0 {
        chain.push(LlamaSampler::min_p(p.min_p, 1));
    }
    chain.push(LlamaSampler::temp(p.temperature));
    chain.push(LlamaSampler::dist(p.seed));
    LlamaSampler::chain(chain, true)
}

/// Candidates the grammar filters before it is run over the whole vocabulary.
pub(crate) const PREFILTER: usize = 512;

/// What decides whether tokens below the pre-filter could still be sampled.
#[derive(Clone, Copy)]
pub(crate) struct Tail {
    pub(crate) temperature: f32,
    pub(crate) top_k: u32,
    pub(crate) top_p: f32,
    pub(crate) min_p: f32,
    /// Logit biases or penalties are on: logits change after ranking, so no pre-filter.
    pub(crate) reshaped: bool,
}

impl Tail {
    /// Whether the chain's pick among the `allowed` grammar-allowed tokens of the pre-filter is
    /// the pick it would make over the whole vocabulary, when the best allowed token's logit is
    /// `gap` above every token left out. The chain runs top_k, top_p, min_p, temperature, dist:
    /// - greedy picks the best allowed token, which is inside;
    /// - top_k keeps the k best allowed tokens, all inside when `allowed >= k`;
    /// - without top_p, min_p drops every token more than `-ln(min_p)` below the best;
    /// - otherwise the left-out tokens that top_k (or the whole vocabulary) could keep weigh
    ///   together less than 1e-4 of the best token at the temperature.
    fn cut(self, gap: f32, allowed: usize, n_vocab: usize) -> bool {
        if self.reshaped {
            return false;
        }
        if self.temperature <= 0.0 || (self.top_k > 0 && allowed >= self.top_k as usize) {
            return true;
        }
        if self.top_p >= 1.0 && self.min_p > 0.0 && gap > -self.min_p.ln() {
            return true;
        }
        let outside = if self.top_k > 0 { self.top_k as usize - allowed } else { n_vocab.saturating_sub(PREFILTER) };
        (outside as f32).ln() - gap / self.temperature < (1e-4_f32).ln()
    }
}

/// Samples under a grammar. The chain picks a token from the raw logits and the grammar checks
/// only that one token (cheap), as llama.cpp's common sampler does. When it refuses, the grammar
/// filters the [`PREFILTER`] most likely tokens; if the best allowed one among them is far
/// enough above the rest of the vocabulary that nothing below could be sampled ([`Tail::cut`]),
/// the chain picks among those; only otherwise is the grammar run over the whole vocabulary
/// (tens of milliseconds for 50k tokens). Both samplers then accept the token, so the grammar
/// never sees a token it did not allow (which would abort the process in llama.cpp).
pub(crate) fn sample_constrained(
    ctx: &LlamaContext<'_>,
    row: i32,
    chain: &mut LlamaSampler,
    g: &mut LlamaSampler,
    eos: LlamaToken,
    tail: Tail,
) -> LlamaToken {
    let mut cur = ctx.token_data_array_ith(row);
    chain.apply(&mut cur);
    let first = cur.selected_token().unwrap_or(LlamaToken(0));
    let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(first, 1.0, 0.0)], false);
    g.apply(&mut one);
    let token = if one.data.first().is_some_and(|d| d.logit() > f32::NEG_INFINITY) {
        Some(first)
    } else {
        prefiltered(ctx.get_logits_ith(row), chain, g, tail).or_else(|| {
            let mut cur = ctx.token_data_array_ith(row);
            g.apply(&mut cur);
            if !cur.data.iter().any(|d| d.logit() > f32::NEG_INFINITY) {
                return None;
            }
            chain.apply(&mut cur);
            allowed_pick(&cur)
        })
    };
    // Nothing allowed (a grammar with no way on): end the sequence without feeding the grammar
    // a token it refused.
    let Some(token) = token else { return eos };
    g.accept(token);
    chain.accept(token);
    token
}

/// The chain's pick among the grammar-allowed tokens of the most likely [`PREFILTER`], when
/// that is the pick it would make over the whole vocabulary.
pub(crate) fn prefiltered(
    logits: &[f32],
    chain: &mut LlamaSampler,
    g: &mut LlamaSampler,
    tail: Tail,
) -> Option<LlamaToken> {
    if logits.len() <= PREFILTER {
        return None;
    }
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    let desc = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]);
    ids.select_nth_unstable_by(PREFILTER - 1, desc);
    ids.truncate(PREFILTER);
    let floor = ids.iter().map(|&i| logits[i as usize]).fold(f32::INFINITY, f32::min);
    let data = ids.iter().map(|&i| LlamaTokenData::new(LlamaToken(i as i32), logits[i as usize], 0.0)).collect();
    let mut top = LlamaTokenDataArray::new(data, false);
    g.apply(&mut top);
    let finite = top.data.iter().map(LlamaTokenData::logit).filter(|l| *l > f32::NEG_INFINITY);
    let (allowed, best) = finite.fold((0, f32::NEG_INFINITY), |(n, m), l| (n + 1, m.max(l)));
    if allowed == 0 || !tail.cut(best - floor, allowed, logits.len()) {
        return None;
    }
    chain.apply(&mut top);
    allowed_pick(&top)
}

/// The chain's pick, if the grammar allowed it (its logit is not -inf).
pub(crate) fn allowed_pick(cur: &LlamaTokenDataArray) -> Option<LlamaToken> {
    cur.selected_token().filter(|t| cur.data.iter().any(|d| d.id() == *t && d.logit() > f32::NEG_INFINITY))
}

#[cfg(test)]
mod tests {
    use super::Tail;

    #[test]
    fn the_tail_is_cut_only_when_nothing_below_could_be_sampled() {
        let t = |temperature, top_k, top_p, min_p| Tail { temperature, top_k, top_p, min_p, reshaped: false };
        assert!(t(0.0, 0, 1.0, 0.0).cut(0.0, 1, 50_000), "greedy");
        let defaults = t(0.8, 40, 0.95, 0.05);
        assert!(defaults.cut(0.1, 40, 50_000), "top_k filled inside");
        assert!(defaults.cut(12.0, 1, 50_000), "39 outside at e^-15 each");
        assert!(!defaults.cut(3.0, 1, 50_000));
        let min_p = t(0.8, 0, 1.0, 0.05);
        assert!(min_p.cut(3.1, 1, 50_000) && !min_p.cut(2.9, 1, 50_000), "ln(20) = 3.0");
        let plain = t(1.0, 0, 1.0, 0.0);
        assert!(plain.cut(21.0, 1, 50_000) && !plain.cut(10.0, 1, 50_000));
        assert!(!Tail { reshaped: true, ..t(0.0, 0, 1.0, 0.0) }.cut(99.0, 1, 50_000), "biased logits");
    }
}
