//! The HTTP edge, below every handler and service: the route a request was matched to
//! ([`route::Matched`]), errors in each protocol's shape, extractors, the layers (request ids,
//! metrics and the log line, API keys and rate limits, timeouts), the accept loop and limits.

pub mod auth;
pub mod error;
pub mod extract;
pub mod ids;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod middleware;
pub mod refused;
pub mod route;
pub mod stop;
