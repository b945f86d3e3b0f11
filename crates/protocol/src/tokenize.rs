//! `/tokenize` and `/detokenize`, as llama-server has them (plus an optional `model`).

use serde::{Deserialize, Serialize};

/// A tokenize request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TokenizeRequest {
    /// Model id or alias; the default model when empty.
    #[serde(default)]
    pub model: String,
    /// The text.
    pub content: Option<String>,
    /// Add the model's BOS/EOS (default false, as llama-server).
    #[serde(default)]
    pub add_special: bool,
    /// Return each token's text with its id.
    #[serde(default)]
    pub with_pieces: bool,
}

/// A tokenize response.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TokenizeResponse {
    /// Ids, or ids with pieces.
    pub tokens: Vec<TokenEntry>,
}

/// One token.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum TokenEntry {
    /// The id alone.
    Id(u32),
    /// The id and its text.
    WithPiece {
        /// The id.
        id: u32,
        /// Its text, or its bytes when they are not valid UTF-8 on their own.
        piece: Piece,
    },
}

/// A token's text.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Piece {
    /// Valid UTF-8.
    Text(String),
    /// Part of a multi-byte character.
    Bytes(Vec<u8>),
}

/// A detokenize request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct DetokenizeRequest {
    /// Model id or alias; the default model when empty.
    #[serde(default)]
    pub model: String,
    /// Token ids.
    pub tokens: Option<Vec<i64>>,
}

/// A detokenize response.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct DetokenizeResponse {
    /// The text.
    pub content: String,
}
