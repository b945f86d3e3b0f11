//! What the handlers share, held in [`state::AppState`]: the per-key shares of the pools, model
//! ownership and scope, quotas, pull jobs and retrieval's state. Services know nothing of
//! handlers.

pub mod owner;
pub mod pulls;
pub mod quota;
pub mod retrieval;
pub mod share;
pub mod state;
