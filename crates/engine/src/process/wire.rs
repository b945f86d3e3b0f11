//! What crosses the pipe between the server and a model's worker process: the messages, and
//! length-delimited frames of postcard-encoded messages.
//!
//! The parent opens with its protocol version, then sends [`Hello`] and [`ToChild`] frames on
//! the child's stdin. The child opens with [`MAGIC`] and its version, then sends [`FromChild`]
//! frames on its stdout. The magic lets the parent skip anything a library printed to stdout
//! before the child moved its own output out of the way.

use crate::backend::{BackendInfo, KvType, LoadSpec, Pooling};
use crate::embed::{EmbedOutput, ValidEmbedRequest};
use crate::error::{DecodeError, EngineError, GrammarError, LoadError, WrongKind};
use crate::registry::{ModelInfo, ModelKind, TemplateSource};
use crate::request::{Completion, Event, FinishReason, TokenLogprob, ValidGenerateRequest};
use crate::worker::WorkerConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bumped whenever a message changes shape: both ends come from the same binary, unless the
/// file was replaced while the server ran.
pub(crate) const PROTOCOL_VERSION: u32 = 2;

/// What a worker writes first, before its version.
pub(crate) const MAGIC: &[u8; 8] = b"HEARTHW\x01";

/// Largest frame either side accepts (a whole embedding batch's vectors fit many times over).
pub(crate) const MAX_FRAME: usize = 64 << 20;

/// Bytes the parent skips, looking for [`MAGIC`], before it gives up on a worker.
pub(crate) const MAX_PREAMBLE: usize = 64 << 10;

/// The first frame to a worker: the model to load and how to run it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub(crate) spec: WireSpec,
    pub(crate) cfg: WorkerConfig,
}

/// Messages from the server to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToChild {
    /// Generate text for request `id`, with `forks` more choices from the same prompt.
    Generate { id: u64, req: ValidGenerateRequest, forks: u32 },
    /// Embed or rerank.
    Embed { id: u64, req: ValidEmbedRequest },
    /// Answer with [`FromChild::Pong`] from the worker loop.
    Ping { id: u64 },
    /// The client of `(id, choice)` is gone: free its sequence at the next step.
    Cancel { id: u64, choice: u32 },
    /// The server delivered `n` events of `(id, choice)` to its client: `n` more may come.
    Credit { id: u64, choice: u32, n: u32 },
}

/// Messages from a worker to the server.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromChild {
    /// The model is loaded.
    Ready(BackendInfo),
    /// The model did not load; the worker exits.
    LoadFailed(LoadError),
    /// An event of `(id, choice)`.
    Event { id: u64, choice: u32, event: WireEvent },
    /// The outputs of embedding request `id`.
    Embedded { id: u64, result: Result<EmbedOutput, WorkerError> },
    /// The worker loop answered ping `id`.
    Pong { id: u64 },
    /// No more events come for `(id, choice)` (cancelled, or its sequence ended without one).
    Closed { id: u64, choice: u32 },
    /// The worker's counters, sent when they change.
    Stats(StatsSnapshot),
}

/// [`Event`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireEvent {
    Started { prompt_tokens: u32, cached_tokens: u32 },
    Text { text: String, tokens: u32 },
    Logprobs(Vec<TokenLogprob>),
    Done { finish: FinishReason, completion: Completion },
    Error(WorkerError),
}

/// The errors a worker loop produces, on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WorkerError {
    Grammar(GrammarError),
    Decode(DecodeError),
    WrongKind(WrongKind),
    Overloaded,
    Failed,
}

/// A worker's counters ([`crate::WorkerStats`] without the ones the server keeps itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StatsSnapshot {
    pub(crate) active: u64,
    pub(crate) kv_used: u64,
    pub(crate) kv_cached: u64,
    pub(crate) finished: u64,
    pub(crate) cancelled: u64,
}

/// [`LoadSpec`] on the wire. The worker never renders a chat template, so none is sent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireSpec {
    id: String,
    /// The path's bytes (a path need not be UTF-8).
    path: Vec<u8>,
    arch: String,
    n_params: u64,
    quant: String,
    n_ctx_train: u32,
    kind: ModelKind,
    model_pooling: Option<Pooling>,
    n_embd: u32,
    kv_bytes_per_token: u64,
    size_bytes: u64,
    created: u64,
    n_ctx: u32,
    n_kv: u32,
    n_slots: usize,
    n_batch: usize,
    threads: usize,
    pooling: Pooling,
    kv_type: KvType,
    gpu: crate::gpu::GpuPlan,
}

impl From<&LoadSpec> for WireSpec {
    fn from(s: &LoadSpec) -> Self {
        use std::os::unix::ffi::OsStrExt;
        let m = &s.model;
        Self {
            id: m.id.clone(),
            path: m.path.as_os_str().as_bytes().to_vec(),
            arch: m.arch.clone(),
            n_params: m.n_params,
            quant: m.quant.clone(),
            n_ctx_train: m.n_ctx_train,
            kind: m.kind,
            model_pooling: m.pooling,
            n_embd: m.n_embd,
            kv_bytes_per_token: m.kv_bytes_per_token,
            size_bytes: m.size_bytes,
            created: m.created,
            n_ctx: s.n_ctx,
            n_kv: s.n_kv,
            n_slots: s.n_slots,
            n_batch: s.n_batch,
            threads: s.threads,
            pooling: s.pooling,
            kv_type: s.kv_type,
            gpu: s.gpu.clone(),
        }
    }
}

impl WireSpec {
    pub(crate) fn into_spec(self) -> LoadSpec {
        use std::os::unix::ffi::OsStringExt;
        let model = ModelInfo {
            id: self.id,
            path: std::ffi::OsString::from_vec(self.path).into(),
            arch: self.arch,
            n_params: self.n_params,
            quant: self.quant,
            n_ctx_train: self.n_ctx_train,
            template: TemplateSource::Gguf(String::new()),
            kind: self.kind,
            pooling: self.model_pooling,
            n_embd: self.n_embd,
            kv_bytes_per_token: self.kv_bytes_per_token,
            size_bytes: self.size_bytes,
            created: self.created,
        };
        LoadSpec {
            model,
            n_ctx: self.n_ctx,
            n_kv: self.n_kv,
            n_slots: self.n_slots,
            n_batch: self.n_batch,
            threads: self.threads,
            pooling: self.pooling,
            kv_type: self.kv_type,
            gpu: self.gpu,
        }
    }
}

impl From<Event> for WireEvent {
    fn from(e: Event) -> Self {
        match e {
            Event::Started { prompt_tokens, cached_tokens } => WireEvent::Started { prompt_tokens, cached_tokens },
            Event::Text { text, tokens } => WireEvent::Text { text, tokens },
            Event::Logprobs(l) => WireEvent::Logprobs(l),
            Event::Done { finish, completion } => WireEvent::Done { finish, completion },
            Event::Error(e) => WireEvent::Error(WorkerError::from(e)),
        }
    }
}

impl WireEvent {
    /// The event, with errors naming `model`.
    pub(crate) fn into_event(self, model: &str) -> Event {
        match self {
            WireEvent::Started { prompt_tokens, cached_tokens } => Event::Started { prompt_tokens, cached_tokens },
            WireEvent::Text { text, tokens } => Event::Text { text, tokens },
            WireEvent::Logprobs(l) => Event::Logprobs(l),
            WireEvent::Done { finish, completion } => Event::Done { finish, completion },
            WireEvent::Error(e) => Event::Error(e.into_error(model)),
        }
    }

    /// Whether nothing follows this event.
    pub(crate) fn is_last(&self) -> bool {
        matches!(self, WireEvent::Done { .. } | WireEvent::Error(_))
    }
}

impl From<EngineError> for WorkerError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::InvalidGrammar(g) => WorkerError::Grammar(g),
            EngineError::Decode(d) => WorkerError::Decode(d),
            EngineError::WrongModelKind(w) => WorkerError::WrongKind(w),
            EngineError::Overloaded { .. } => WorkerError::Overloaded,
            other => {
                tracing::warn!(error = %other, "a worker error with no wire form is sent as a worker failure");
                WorkerError::Failed
            }
        }
    }
}

impl WorkerError {
    pub(crate) fn into_error(self, model: &str) -> EngineError {
        match self {
            WorkerError::Grammar(g) => EngineError::InvalidGrammar(g),
            WorkerError::Decode(d) => EngineError::Decode(d),
            WorkerError::WrongKind(w) => EngineError::WrongModelKind(w),
            WorkerError::Overloaded => EngineError::Overloaded { model: model.to_string() },
            WorkerError::Failed => EngineError::WorkerFailed,
        }
    }
}

/// The encoded frame of `msg`: its length (u32, little-endian), then its postcard bytes.
pub(crate) fn frame<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = vec![0u8; 4];
    // Every message type is plain data: serialising one cannot fail.
    match postcard::to_extend(msg, out) {
        Ok(v) => out = v,
        Err(e) => {
            tracing::error!(error = %e, "a message could not be encoded");
            return Vec::new();
        }
    }
    let len = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

fn decode<T: DeserializeOwned>(buf: &[u8]) -> io::Result<T> {
    postcard::from_bytes(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn frame_len(head: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_le_bytes(head) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame of {len} bytes")));
    }
    Ok(len)
}

/// Reads one frame; `None` at a clean end of the stream.
///
/// # Errors
/// A read error, a frame over [`MAX_FRAME`], or bytes that are not a `T`.
pub(crate) fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> io::Result<Option<T>> {
    let mut head = [0u8; 4];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut buf = vec![0u8; frame_len(head)?];
    r.read_exact(&mut buf)?;
    decode(&buf).map(Some)
}

/// [`read_frame`] on an async stream.
///
/// # Errors
/// As [`read_frame`].
pub(crate) async fn read_frame_async<T: DeserializeOwned>(r: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<T>> {
    let mut head = [0u8; 4];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut buf = vec![0u8; frame_len(head)?];
    r.read_exact(&mut buf).await?;
    decode(&buf).map(Some)
}

/// Writes the child's opening: [`MAGIC`] and its version.
///
/// # Errors
/// A write error.
pub(crate) fn write_child_opening(w: &mut impl Write) -> io::Result<()> {
    w.write_all(MAGIC)?;
    w.write_all(&PROTOCOL_VERSION.to_le_bytes())?;
    w.flush()
}

/// Skips to just past [`MAGIC`] and returns the child's version.
///
/// # Errors
/// End of stream, or no magic within [`MAX_PREAMBLE`] bytes.
pub(crate) async fn read_child_opening(r: &mut (impl AsyncRead + Unpin)) -> io::Result<u32> {
    let mut seen = 0usize;
    let mut matched = 0usize;
    while matched < MAGIC.len() {
        let b = r.read_u8().await?;
        seen += 1;
        if seen > MAX_PREAMBLE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no worker greeting"));
        }
        matched = if b == MAGIC[matched] { matched + 1 } else { usize::from(b == MAGIC[0]) };
    }
    let mut v = [0u8; 4];
    r.read_exact(&mut v).await?;
    Ok(u32::from_le_bytes(v))
}

/// Reads the parent's opening (its version).
///
/// # Errors
/// A read error or end of stream.
pub(crate) fn read_parent_opening(r: &mut impl Read) -> io::Result<u32> {
    let mut v = [0u8; 4];
    r.read_exact(&mut v)?;
    Ok(u32::from_le_bytes(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::SamplingParams;

    #[test]
    fn a_frame_reads_back_as_it_was_written() {
        let req = ValidGenerateRequest {
            prompt: vec![1, 2, 300_000],
            max_tokens: 7,
            sampling: SamplingParams::greedy(),
            stop: vec!["END".into()],
            ignore_eos: false,
            logprobs: Some(2),
        };
        let mut buf = frame(&ToChild::Generate { id: 9, req, forks: 1 });
        buf.extend(frame(&ToChild::Cancel { id: 9, choice: 1 }));
        let mut r = &buf[..];
        match read_frame::<ToChild>(&mut r).unwrap() {
            Some(ToChild::Generate { id: 9, req, forks: 1 }) => {
                assert_eq!(req.prompt, vec![1, 2, 300_000]);
                assert_eq!(req.stop, vec!["END".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(read_frame::<ToChild>(&mut r).unwrap(), Some(ToChild::Cancel { id: 9, choice: 1 })));
        assert!(read_frame::<ToChild>(&mut r).unwrap().is_none());
    }

    #[test]
    fn a_negative_infinite_logprob_survives_the_wire() {
        let lp = TokenLogprob { token: "a".into(), bytes: vec![97], logprob: f32::NEG_INFINITY, top: Vec::new() };
        let buf = frame(&FromChild::Event { id: 1, choice: 0, event: WireEvent::Logprobs(vec![lp]) });
        match read_frame::<FromChild>(&mut &buf[..]).unwrap() {
            Some(FromChild::Event { event: WireEvent::Logprobs(l), .. }) => assert_eq!(l[0].logprob, f32::NEG_INFINITY),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_frame_longer_than_the_limit_is_refused_before_it_is_read() {
        let head = (MAX_FRAME as u32 + 1).to_le_bytes();
        let e = read_frame::<FromChild>(&mut &head[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn the_parent_skips_what_was_printed_before_the_greeting() {
        let mut out = b"llama.cpp says hello\nHEARTHW".to_vec();
        write_child_opening(&mut out).unwrap();
        assert_eq!(read_child_opening(&mut &out[..]).await.unwrap(), PROTOCOL_VERSION);
        let junk = vec![b'x'; MAX_PREAMBLE + 10];
        assert!(read_child_opening(&mut &junk[..]).await.is_err());
    }

    #[test]
    fn a_spec_crosses_the_wire_with_its_path_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let raw = std::ffi::OsStr::from_bytes(b"/models/caf\xe9.gguf");
        let model = ModelInfo {
            id: "m".into(),
            path: raw.into(),
            arch: "llama".into(),
            n_params: 1,
            quant: "Q4_0".into(),
            n_ctx_train: 2048,
            template: TemplateSource::Builtin("chatml"),
            kind: ModelKind::Causal,
            pooling: None,
            n_embd: 8,
            kv_bytes_per_token: 16,
            size_bytes: 100,
            created: 5,
        };
        let spec = LoadSpec {
            model,
            n_ctx: 512,
            n_kv: 1024,
            n_slots: 2,
            n_batch: 64,
            threads: 3,
            pooling: Pooling::Mean,
            kv_type: KvType::Q8_0,
            gpu: crate::gpu::GpuPlan { layers: crate::gpu::GpuLayers::Count(7), ..Default::default() },
        };
        let hello = Hello {
            spec: WireSpec::from(&spec),
            cfg: WorkerConfig { prefill_chunk: 1, embed_budget: 2, prefill_stretch: 3.0 },
        };
        let back: Hello = read_frame(&mut &frame(&hello)[..]).unwrap().unwrap();
        let s = back.spec.into_spec();
        assert_eq!(s.model.path.as_os_str(), raw);
        assert_eq!((s.n_kv, s.n_slots, s.threads, s.kv_type), (1024, 2, 3, KvType::Q8_0));
        assert_eq!(s.gpu.layers, crate::gpu::GpuLayers::Count(7));
    }
}
