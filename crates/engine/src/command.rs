//! Messages from handles to a model's worker, and the answers every worker gives the same way.

use crate::backend::{Backend, Token};
use crate::embed::{EmbedOutput, EmbedRequest};
use crate::error::EngineError;
use crate::request::{Event, GenerateRequest};
use std::sync::mpsc::Receiver;
use tokio::sync::{mpsc, oneshot};

/// A token and its bytes (part of a UTF-8 character for byte-level vocabularies).
pub type TokenPiece = (Token, Vec<u8>);

/// Messages handles send to a worker. Workers answer every command; a reply whose receiver is
/// gone is dropped without effect.
#[derive(Debug)]
pub(crate) enum Command {
    /// Generate text; events go to `events`.
    Generate {
        /// The validated request.
        req: GenerateRequest,
        /// Where the sequence's events go.
        events: mpsc::Sender<Event>,
        /// Where the events of more choices from the same prompt go (`n > 1`).
        forks: Vec<mpsc::Sender<Event>>,
    },
    /// Embed or rerank inputs.
    Embed {
        /// The validated request.
        req: EmbedRequest,
        /// Where the outputs go.
        reply: oneshot::Sender<Result<EmbedOutput, EngineError>>,
    },
    /// Tokenize text.
    Tokenize {
        /// The text (special tokens in it are parsed).
        text: String,
        /// Let the tokenizer add BOS/EOS as the model wants.
        add_special: bool,
        /// Where the tokens go.
        reply: oneshot::Sender<Vec<TokenPiece>>,
    },
    /// Turn tokens back into text.
    Detokenize {
        /// The tokens.
        tokens: Vec<Token>,
        /// Where the text goes.
        reply: oneshot::Sender<Result<String, EngineError>>,
    },
}

/// Answers a tokenizer command at once; returns any other command to the caller.
pub(crate) fn answer_lookup(backend: &dyn Backend, n_vocab: u32, cmd: Command) -> Option<Command> {
    match cmd {
        Command::Tokenize { text, add_special, reply } => {
            let tokens = backend.tokenize(&text, add_special);
            let _ = reply.send(tokens.into_iter().map(|t| (t, backend.piece(t))).collect());
            None
        }
        Command::Detokenize { tokens, reply } => {
            let text = match tokens.iter().position(|&t| t >= n_vocab) {
                Some(i) => Err(EngineError::invalid(
                    "tokens",
                    format!("token id {} at index {i} is outside the vocabulary (size {n_vocab})", tokens[i]),
                )),
                None => Ok(backend.detokenize(&tokens)),
            };
            let _ = reply.send(text);
            None
        }
        other => Some(other),
    }
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
