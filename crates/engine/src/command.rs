//! Messages from handles to a model's worker.

use crate::embed::{EmbedOutput, ValidEmbedRequest};
use crate::error::EngineError;
use crate::request::{Event, ValidGenerateRequest};
use std::sync::mpsc::Receiver;
use tokio::sync::{mpsc, oneshot};

/// Messages handles send to a worker. Workers answer every command; a reply whose receiver is
/// gone is dropped without effect. Prompts arrive tokenized: a worker never tokenizes.
#[derive(Debug)]
pub(crate) enum Command {
    /// Generate text; events go to `events`.
    Generate {
        /// The validated request.
        req: ValidGenerateRequest,
        /// Where the sequence's events go.
        events: mpsc::Sender<Event>,
        /// Where the events of more choices from the same prompt go (`n > 1`).
        forks: Vec<mpsc::Sender<Event>>,
    },
    /// Embed or rerank inputs.
    Embed {
        /// The validated request.
        req: ValidEmbedRequest,
        /// Where the outputs go.
        reply: oneshot::Sender<Result<EmbedOutput, EngineError>>,
    },
    /// Answer at once: the worker is taking commands (health checks).
    Ping {
        /// Where the answer goes.
        reply: oneshot::Sender<()>,
    },
}

/// Takes commands off a worker's channel: waits for the first one when the worker is `idle`,
/// then takes every one already there. Returns false when the worker should stop (idle, and
/// every handle is gone).
pub(crate) fn drain(rx: &Receiver<Command>, idle: bool, mut take: impl FnMut(Command)) -> bool {
    if idle {
        match rx.recv() {
            Ok(cmd) => take(cmd),
            Err(_) => return false,
        }
    }
    while let Ok(cmd) = rx.try_recv() {
        take(cmd);
    }
    true
}
