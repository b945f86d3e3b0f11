//! One module per command of the `hearth` binary; `main.rs` parses the command line and calls
//! the command's `run` (or `serve`). Commands that talk to a running server share
//! `crate::client`.

pub mod bench;
pub mod keys;
pub mod models;
pub mod pull;
pub mod rag;
pub mod run;
pub mod serve;
pub mod worker;
