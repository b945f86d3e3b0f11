//! Hearth's engine: everything between a validated request and its tokens.
//!
//! The engine owns the model registry, request validation types, chat templates, and one
//! worker thread per loaded model that schedules sequences into batches. It knows nothing of
//! HTTP and nothing of llama.cpp: an inference library plugs in through [`backend::Backend`].
//!
//! Modules:
//! - [`registry`], [`gguf`]: what models exist, read from GGUF headers without loading weights;
//! - [`template`]: chat templates (Jinja via minijinja, or built-in);
//! - [`tokenizer`]: a model's vocabulary on the request's side (prompts reach workers as ids);
//! - [`sampling`], [`request`]: validated requests and the events that come back;
//! - [`manager`]: lazy loading, eviction and unloading ([`lifecycle`] decides);
//!   [`ModelHandle`]: a loaded model's worker thread;
//! - [`scheduler`]: pure slot and batch decisions; `worker` applies them;
//! - [`embed`]: embedding/rerank requests and the pure packing decisions `embed_worker` applies;
//! - [`stop`], [`utf8`]: stop strings and incremental detokenization.
//!
//! ```
//! use hearth_engine::stop::StopMatcher;
//! let mut m = StopMatcher::new(vec!["END".into()]);
//! assert_eq!(m.push("abc EN").emit, "abc ");
//! assert!(m.push("D").stopped);
//! ```

pub mod backend;
mod cause;
mod command;
pub mod constraint;
pub mod crash;
pub mod deep;
pub mod embed;
mod embed_worker;
pub mod error;
pub mod gguf;
pub mod gpu;
mod grammar_shape;
mod handle;
mod invalid;
mod launch;
pub mod lifecycle;
pub mod limits;
mod live;
pub mod manager;
mod marks;
pub mod model;
pub mod process;
pub mod registry;
pub mod request;
pub mod sampling;
pub mod scheduler;
mod sequence;
mod settings;
pub mod stop;
pub mod template;
mod tokenize_pool;
pub mod tokenizer;
pub mod tools;
pub mod utf8;
mod worker;

pub use backend::{Backend, BackendInfo, BackendLoader, BatchItem, KvType, LoadSpec, Pooling, SpecialTokens, Token};
pub use constraint::{Constraint, Grammar, Trigger};
pub use embed::{EmbedInput, EmbedOutput, EmbedRequest, ValidEmbedRequest};
pub use error::EngineError;
pub use handle::ModelHandle;
pub use lifecycle::KeepAlive;
pub use manager::{EngineSettings, ModelManager, ResidentModel};
pub use registry::{ModelInfo, ModelKind, Registry, TemplateSource};
pub use request::{
    Completion, Event, FinishReason, GenerateRequest, PromptInput, RenderedPrompt, TokenLogprob, TopLogprob,
    ValidGenerateRequest,
};
pub use sampling::{SamplingDefaults, SamplingInput, SamplingParams};
pub use template::TemplateMessage;
pub use tokenizer::{Tokenizer, Vocab};
pub use tools::{Tool, ToolCall, ToolChoice, ToolEvent, ToolFamily, ToolParser, ToolRequest};
pub use worker::WorkerStats;
