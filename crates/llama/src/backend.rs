//! The engine's `Backend` over one loaded model and its context: decoding batches, sampling
//! each slot, log-probabilities, KV cache copies and embeddings.

use crate::lazy;
use crate::sampler::{sample_constrained, watch_trigger, SlotSampler, Tail};
use hearth_engine::error::{DecodeError, GrammarError};
use hearth_engine::sampling::SamplingParams;
use hearth_engine::{Backend, BackendInfo, BatchItem, LoadSpec, ModelKind, Pooling, SpecialTokens, Token};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

/// llama.cpp's decode status as a cause.
pub(crate) fn decode_error(e: llama_cpp_2::DecodeError) -> DecodeError {
    match e {
        llama_cpp_2::DecodeError::NoKvCacheSlot => DecodeError::NoKvSpace,
        llama_cpp_2::DecodeError::NTokensZero => DecodeError::BatchSize { tokens: 0, limit: 0 },
        llama_cpp_2::DecodeError::Unknown(code) => DecodeError::Library(code),
    }
}

/// `token`'s log-probability under `logits` and the `top` most likely tokens' (most likely
/// first), in one pass for the normaliser and a partial selection for the top.
pub(crate) fn log_softmax_report(logits: &[f32], token: Token, top: usize) -> (f32, Vec<(Token, f32)>) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if logits.is_empty() || !max.is_finite() {
        return (f32::NEG_INFINITY, Vec::new());
    }
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let norm = max + sum.ln() as f32;
    let lp = |t: usize| logits[t] - norm;
    let chosen = logits.get(token as usize).map_or(f32::NEG_INFINITY, |l| l - norm);
    let k = top.min(logits.len());
    let mut ids: Vec<usize> = (0..logits.len()).collect();
    if k > 0 && k < ids.len() {
        ids.select_nth_unstable_by(k - 1, |a, b| logits[*b].total_cmp(&logits[*a]));
    }
    ids.truncate(k);
    ids.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
    (chosen, ids.into_iter().map(|t| (t as Token, lp(t))).collect())
}

/// A loaded model and its context, owned by one worker thread.
pub(crate) struct LlamaCppBackend<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    /// Reused for every decode call; holds up to `info.n_batch` tokens.
    batch: LlamaBatch<'static>,
    /// One sampler chain per slot, set when a sequence starts there.
    samplers: Vec<Option<SlotSampler>>,
    info: BackendInfo,
}

impl<'m> LlamaCppBackend<'m> {
    pub(crate) fn new(
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        spec: &LoadSpec,
        placement: hearth_engine::gpu::Placement,
    ) -> Self {
        let n_vocab = u32::try_from(model.n_vocab()).unwrap_or(0);
        let vocab = model.vocab();
        let text_of = |t: LlamaToken| {
            if t.0 >= 0 && (t.0 as u32) < n_vocab {
                String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned()
            } else {
                String::new()
            }
        };
        let id = |t: LlamaToken| u32::try_from(t.0).ok().filter(|&t| t < n_vocab);
        let embedding = spec.model.kind == ModelKind::Embedding;
        let n_embd = match spec.pooling {
            _ if !embedding => 0,
            Pooling::Rank => model.n_cls_out() as usize,
            _ => usize::try_from(model.n_embd_out()).unwrap_or(0),
        };
        let info = BackendInfo {
            n_ctx: spec.n_ctx,
            n_kv: spec.n_kv,
            n_slots: spec.n_slots,
            n_batch: ctx.n_batch() as usize,
            n_vocab,
            bos: text_of(vocab.bos()),
            eos: text_of(vocab.eos()),
            n_embd,
            pooling: embedding.then_some(spec.pooling),
            special: SpecialTokens {
                bos: id(vocab.bos()),
                eos: id(vocab.eos()),
                sep: id(vocab.sep()),
                add_bos: vocab.should_add_bos(),
                add_eos: vocab.should_add_eos(),
                add_sep: vocab.should_add_sep(),
            },
            placement,
        };
        let batch = LlamaBatch::new(info.n_batch, 1);
        Self { model, ctx, batch, samplers: (0..spec.n_slots).map(|_| None).collect(), info }
    }
}

impl Backend for LlamaCppBackend<'_> {
    fn info(&self) -> BackendInfo {
        self.info.clone()
    }

    fn piece(&self, token: Token) -> Vec<u8> {
        self.model.vocab().token_to_piece(LlamaToken(token as i32), false, None)
    }

    fn is_eog(&self, token: Token) -> bool {
        self.model.vocab().is_eog(LlamaToken(token as i32))
    }

    fn start_sequence(&mut self, slot: usize, params: &SamplingParams) -> Result<(), GrammarError> {
        let chain = crate::sampler::chain(self.model, self.ctx.n_ctx(), params);
        let parse = |gbnf: &str| {
            LlamaSampler::grammar(self.model, gbnf, "root").map_err(|e| {
                tracing::debug!(error = %e, "llama.cpp could not parse a request's grammar");
                GrammarError::Syntax
            })
        };
        let grammar = match &params.grammar {
            None => None,
            Some(g) if g.triggers.is_empty() => Some(parse(&g.gbnf)?),
            // Lazy: made when its trigger appears (see `lazy`); parsed once now so that a bad
            // grammar is the client's 400 before any token.
            Some(g) => {
                parse(&g.gbnf)?;
                None
            }
        };
        let lazy = params.grammar.as_ref().filter(|g| !g.triggers.is_empty()).map(lazy::Lazy::new);
        if let Some(s) = self.samplers.get_mut(slot) {
            let tail = Tail {
                temperature: params.temperature,
                top_k: params.top_k,
                top_p: params.top_p,
                min_p: params.min_p,
                // Biases and penalties move logits after the pre-filter has ranked them.
                reshaped: !params.logit_bias.is_empty()
                    || params.repeat_penalty != 1.0
                    || params.presence_penalty != 0.0
                    || params.frequency_penalty != 0.0,
            };
            *s = Some(SlotSampler { chain, grammar, lazy, tail });
        }
        Ok(())
    }

    fn decode(&mut self, items: &[BatchItem]) -> Result<(), DecodeError> {
        if items.is_empty() || items.len() > self.info.n_batch {
            return Err(DecodeError::BatchSize { tokens: items.len(), limit: self.info.n_batch });
        }
        self.batch.clear();
        for it in items {
            let out_of_range = DecodeError::OutOfRange { seq: it.slot, token: it.token };
            if it.token >= self.info.n_vocab || it.slot >= self.info.n_slots {
                return Err(out_of_range);
            }
            self.batch
                .add(LlamaToken(it.token as i32), it.pos as i32, &[it.slot as i32], it.logits)
                .map_err(|_| out_of_range)?;
        }
        self.ctx.decode(&mut self.batch).map_err(decode_error)
    }

    fn sample(&mut self, slot: usize, row: usize) -> Token {
        let ctx = &self.ctx;
        let model = self.model;
        match self.samplers.get_mut(slot).and_then(Option::as_mut) {
            Some(s @ SlotSampler { grammar: None, lazy: Some(_), .. }) => {
                let t = s.chain.sample(ctx, row as i32);
                watch_trigger(s, model, t);
                t.0 as u32
            }
            Some(SlotSampler { chain, grammar: None, .. }) => chain.sample(ctx, row as i32).0 as u32,
            Some(SlotSampler { chain, grammar: Some(g), tail, .. }) => {
                let vocab = self.model.vocab();
                let end = if vocab.eos().0 >= 0 { vocab.eos() } else { vocab.eot() };
                sample_constrained(ctx, row as i32, chain, g, end, *tail).0 as u32
            }
            None => LlamaSampler::greedy().sample(ctx, row as i32).0 as u32,
        }
    }

    fn logprobs(&self, row: usize, token: Token, top: usize) -> (f32, Vec<(Token, f32)>) {
        log_softmax_report(self.ctx.get_logits_ith(row as i32), token, top)
    }

    fn copy_kv(&mut self, src: usize, dst: usize) -> bool {
        // Whole sequences only: llama.cpp asserts (and aborts) on a partial copy between
        // streams of a non-unified cache.
        src < self.info.n_slots
            && dst < self.info.n_slots
            && self.ctx.copy_kv_cache_seq(src as i32, dst as i32, None, None).is_ok()
    }

    fn truncate_kv(&mut self, slot: usize, keep: u32) -> bool {
        let p0 = if keep == 0 { None } else { Some(keep) };
        self.ctx.clear_kv_cache_seq(Some(slot as u32), p0, None).unwrap_or(false)
    }

    fn embed(&mut self, inputs: &[&[Token]]) -> Result<Vec<Vec<f32>>, DecodeError> {
        let info = &self.info;
        let total: usize = inputs.iter().map(|t| t.len()).sum();
        if info.pooling.is_none() {
            return Err(DecodeError::NoEmbedding(0));
        }
        if inputs.is_empty() || inputs.len() > info.n_slots || total > info.n_batch {
            return Err(DecodeError::BatchSize { tokens: total, limit: info.n_batch });
        }
        self.batch.clear();
        for (seq, tokens) in inputs.iter().enumerate() {
            let bad = tokens.iter().find(|&&t| t >= info.n_vocab);
            if tokens.is_empty() || tokens.len() > info.n_ctx as usize || bad.is_some() {
                return Err(DecodeError::OutOfRange { seq, token: bad.copied().unwrap_or(0) });
            }
            for (pos, &t) in tokens.iter().enumerate() {
                self.batch
                    .add(LlamaToken(t as i32), pos as i32, &[seq as i32], true)
                    .map_err(|_| DecodeError::OutOfRange { seq, token: t })?;
            }
        }
        let decoded = self.ctx.decode(&mut self.batch).map_err(decode_error);
        let out = decoded.and_then(|()| {
            (0..inputs.len())
                .map(|seq| {
                    self.ctx
                        .embeddings_seq_ith(seq as i32)
                        .map(<[f32]>::to_vec)
                        .map_err(|_| DecodeError::NoEmbedding(seq))
                })
                .collect()
        });
        // A decoder embedding model keeps the inputs' KV cells; the next call starts empty.
        self.ctx.clear_kv_cache();
        out
    }
}
