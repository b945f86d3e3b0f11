//! The limits applied at the edge, before a request reaches a model's queue.

use std::time::Duration;

/// Admission limits applied at the edge, before a request reaches a model's queue.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Generation requests in flight at once (running or waiting); beyond it, 429.
    pub max_concurrent_requests: usize,
    /// Longest a request may wait for a free sequence before it gets 503.
    pub queue_timeout: Duration,
    /// Longest a whole request may take (a stream is ended with an error event after it).
    pub request_timeout: Duration,
    /// Largest request body accepted; larger is 413.
    pub max_body_bytes: usize,
    /// Connections open at once; beyond it new ones wait to be accepted.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, from the connection's start or the end
    /// of its previous response (so it also closes idle keep-alive connections).
    pub header_timeout: Duration,
    /// With keys configured, the fraction of each shared pool (admission permits, upload
    /// slots, ingestion queue places) one non-admin key may hold.
    pub key_share: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 256,
            queue_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(600),
            max_body_bytes: 8 << 20,
            max_connections: 1024,
            header_timeout: Duration::from_secs(30),
            key_share: 0.5,
        }
    }
}
