//! The nouns of a model that every part of the engine names: tokens, what a model is, its
//! pooling, special tokens, KV cache type and where its chat template comes from. A leaf: it
//! imports nothing of the engine.

/// A token id.
pub type Token = u32;

/// Whether a model generates text or produces embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ModelKind {
    /// A causal language model.
    Causal,
    /// An embedding (encoder) model.
    Embedding,
}

/// How an embedding model turns per-token states into one output per input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Pooling {
    /// Average over all tokens (sentence-transformers' default).
    #[default]
    Mean,
    /// The first token's state.
    Cls,
    /// The last token's state (decoder embedding models).
    Last,
    /// A cross-encoder's relevance logit for a (query, document) pair.
    Rank,
}

impl Pooling {
    /// llama.cpp's numbering (`LLAMA_POOLING_TYPE_*`), as stored in `{arch}.pooling_type`.
    pub fn from_gguf(v: i64) -> Option<Self> {
        match v {
            1 => Some(Self::Mean),
            2 => Some(Self::Cls),
            3 => Some(Self::Last),
            4 => Some(Self::Rank),
            _ => None,
        }
    }

    /// Lower-case name, for listings.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Cls => "cls",
            Self::Last => "last",
            Self::Rank => "rank",
        }
    }
}

/// Special tokens and the tokenizer's rules for adding them, for building inputs by hand
/// (a cross-encoder's query/document pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SpecialTokens {
    /// Beginning of sequence ([CLS] for BERT).
    pub bos: Option<Token>,
    /// End of sequence ([SEP] for BERT).
    pub eos: Option<Token>,
    /// Separator between two texts.
    pub sep: Option<Token>,
    /// Whether the tokenizer adds BOS.
    pub add_bos: bool,
    /// Whether the tokenizer adds EOS.
    pub add_eos: bool,
    /// Whether a pair gets an extra separator after the first text's EOS (RoBERTa style).
    pub add_sep: bool,
}

/// Element type of a generative model's KV cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KvType {
    /// 16-bit floats.
    #[default]
    F16,
    /// llama.cpp's 8-bit blocks (32 values in 34 bytes). Needs flash attention for the values,
    /// which llama.cpp turns on by itself where the device supports it (every CPU).
    Q8_0,
}

impl KvType {
    /// Bytes this type takes for what takes `f16_bytes` in f16.
    pub fn bytes(self, f16_bytes: u64) -> u64 {
        match self {
            Self::F16 => f16_bytes,
            Self::Q8_0 => f16_bytes.saturating_mul(34) / 64,
        }
    }
}

/// Where a model's chat template comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateSource {
    /// `tokenizer.chat_template` from the GGUF file.
    Gguf(String),
    /// A built-in template chosen by architecture (the file has none).
    Builtin(&'static str),
}
