//! The protocol-neutral path of a generation request: one pass from the wire request to the
//! engine's validated request ([`validate`], [`structured`], [`tools`], [`prepare`]), admission
//! and submission ([`generate`]), then the events framed as a stream ([`stream`]) or collected.

pub mod embed;
pub mod generate;
pub mod ground;
pub mod logprobs;
pub mod prepare;
pub mod stream;
pub mod structured;
pub mod tools;
pub mod validate;
