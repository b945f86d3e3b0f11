//! What the layers need to know of the route a request was matched to: who may call it and
//! which protocol's error shape it answers in. `crate::routes::resolve` finds the route once per
//! request and leaves a [`Matched`] in the request's extensions for every layer to read.

use axum::extract::Request;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// An API key, when keys are configured.
    Key,
    /// An admin API key, when keys are configured (model lifecycle, `/metrics` unless
    /// `--public-metrics`).
    Admin,
    /// A probe: open when `--public-health` (probes send no key).
    Probe,
    /// API documentation: open when `--public-docs`.
    Docs,
    /// The browser UI's static files: always open (they hold nothing private; the UI asks
    /// for a key when the API answers 401).
    Ui,
}

/// The wire protocol a route speaks, which decides the shape of its errors (also those the
/// layers answer: a missing key, a rate limit, a body too large).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OpenAI's `{"error": {"message", "type", "param", "code"}}` (also Hearth's own routes).
    OpenAi,
    /// Ollama's `{"error": "..."}`.
    Ollama,
    /// Anthropic's `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
}

/// The route a request was matched to (a request extension; absent for no route).
#[derive(Debug, Clone, Copy)]
pub struct Matched {
    /// The route's path template (the endpoint label of metrics and logs).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The shape of its errors.
    pub protocol: Protocol,
}

impl Matched {
    /// The route of `req`, when it has one.
    pub fn of(req: &Request) -> Option<Self> {
        req.extensions().get::<Self>().copied()
    }
}
