//! What is wrong with a request field: the cause inside [`crate::EngineError::InvalidParam`],
//! as values a caller can match on. Only the client's own data (a key they sent, a schema
//! path, the control token their text spells) is carried as text.

use crate::cause::GrammarError;
use crate::model::Token;
use thiserror::Error;

/// Why a request field was refused.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Invalid {
    /// A number outside its range (or not finite).
    #[error("{name} must be between {lo} and {hi}, got {got}")]
    OutOfRange {
        /// The field.
        name: &'static str,
        /// Lowest allowed.
        lo: f32,
        /// Highest allowed.
        hi: f32,
        /// What was sent.
        got: f32,
    },
    /// A negative `top_k`.
    #[error("top_k must be >= 0, got {0}")]
    NegativeTopK(i32),
    /// `logit_bias` names more tokens than allowed.
    #[error("logit_bias may name at most {0} tokens")]
    TooManyBiases(usize),
    /// A `logit_bias` key that is not a token id (the key as sent).
    #[error("logit_bias keys must be token ids, got {0:?}")]
    BiasKey(String),
    /// A token id outside the vocabulary.
    #[error("token id {id} at index {index} is outside the vocabulary (size {size})")]
    OutsideVocabulary {
        /// The id.
        id: Token,
        /// Its index in the list.
        index: usize,
        /// The vocabulary's size.
        size: Token,
    },
    /// An embedding input holding an id outside the vocabulary.
    #[error("input {0} has a token id outside the vocabulary")]
    InputOutsideVocabulary(usize),
    /// An embedding input with no tokens.
    #[error("input {0} has no tokens")]
    NoTokens(usize),
    /// The inputs of one embedding or rerank request hold too many tokens in all.
    #[error("the inputs of one request may hold at most {0} tokens in all")]
    TooManyTokens(usize),
    /// A prompt with no tokens.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// More choices than the model has parallel slots.
    #[error("n must be between 1 and {0} (this model's parallel slots)")]
    Choices(usize),
    /// A JSON Schema or grammar larger than allowed.
    #[error("the {0} is larger than {1} KiB")]
    TooLarge(Constrained, usize),
    /// A JSON Schema nested too deep.
    #[error("the JSON Schema is nested deeper than {0}")]
    TooDeep(usize),
    /// A schema node that is not a schema (the node's path).
    #[error("schema at `{0}` must be an object")]
    NotASchema(String),
    /// A schema keyword constrained decoding cannot honour.
    #[error("{0}")]
    Schema(SchemaFault),
    /// A grammar holding a NUL character.
    #[error("the grammar contains a NUL character")]
    Nul,
    /// A grammar without a `root` rule.
    #[error("the grammar needs a `root ::= ...` rule")]
    NoRoot,
    /// Past one of [`crate::limits`] (named in the message).
    #[error("{0}")]
    Limit(crate::limits::Limit),
    /// The backend could not build the grammar.
    #[error("{0}")]
    Grammar(GrammarError),
    /// A tool definition or argument name spells a control token (the token).
    #[error("a tool definition or argument name contains `{0}`, a control token of this model; remove it")]
    ToolSpellsControl(String),
    /// A message's text, which the template rewrites, spells a control token.
    #[error(
        "message {index} contains `{token}`, a control token of this model, in text its chat template rewrites; remove it"
    )]
    MessageSpellsControl {
        /// Which message (0-based).
        index: usize,
        /// The control token.
        token: String,
    },
}

/// What a size limit is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constrained {
    /// `response_format`'s JSON Schema.
    Schema,
    /// A GBNF grammar.
    Grammar,
}

impl std::fmt::Display for Constrained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Constrained::Schema => "JSON Schema",
            Constrained::Grammar => "grammar",
        })
    }
}

/// A keyword of a JSON Schema that the grammar converter would not honour.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("JSON Schema keyword `{keyword}` at {} {rule}", place(.path))]
pub struct SchemaFault {
    /// Where in the schema (`/properties/a`; empty for the root).
    pub path: String,
    /// The keyword (as the client spelled it).
    pub keyword: String,
    /// What it breaks.
    pub rule: SchemaRule,
}

fn place(path: &str) -> String {
    if path.is_empty() {
        String::from("the schema's root")
    } else {
        format!("`{path}`")
    }
}

/// The rule a schema keyword breaks.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SchemaRule {
    /// `false` as a schema.
    #[error("matches nothing")]
    MatchesNothing,
    /// A keyword the converter does not know.
    #[error("is not supported by constrained decoding")]
    Unsupported,
    /// A keyword the converter drops when it stands beside another.
    #[error("beside `{0}` would be ignored")]
    Beside(&'static str),
    /// `minItems`/`maxItems` on a node that is not an array.
    #[error("needs \"type\": \"array\" or `items`")]
    NeedsArray,
    /// `allOf` beside a type other than object.
    #[error("is supported only to merge object schemas")]
    AllOfObjects,
    /// `allOf` with a part that is not an object schema.
    #[error("is supported only to merge object schemas (`properties` or `$ref`)")]
    AllOfParts,
    /// `type` naming something that is not a JSON type.
    #[error("must name JSON types (object, array, string, integer, number, boolean, null)")]
    TypeNames,
    /// A keyword whose value must be an object.
    #[error("must be an object")]
    Object,
    /// A keyword whose value must be a list of schemas.
    #[error("must be an array of schemas")]
    Schemas,
    /// An empty list of schemas.
    #[error("must not be empty")]
    Empty,
    /// `required` that is not a list of names.
    #[error("must be an array of property names")]
    Names,
    /// An empty or missing `enum` list.
    #[error("must be a non-empty array")]
    Enum,
    /// A `$ref` outside the schema.
    #[error("must point into `#/$defs/` or `#/definitions/`; remote references are not fetched")]
    RemoteRef,
    /// A `pattern` that is not a string.
    #[error("must be a string")]
    String,
    /// A `format` the converter does not know.
    #[error("supports only date, time, date-time and uuid")]
    Format,
    /// A length or count that is not a non-negative integer.
    #[error("must be a non-negative integer")]
    Count,
    /// A numeric bound on a type other than integer.
    #[error("is supported only with \"type\": \"integer\"")]
    IntegerOnly,
    /// A numeric bound beyond 64-bit range.
    #[error("must be a number within ±2^53")]
    Bound,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_fault_names_the_keyword_and_where() {
        let root = SchemaFault { path: String::new(), keyword: "not".into(), rule: SchemaRule::Unsupported };
        assert_eq!(
            root.to_string(),
            "JSON Schema keyword `not` at the schema's root is not supported by constrained decoding"
        );
        let deep =
            SchemaFault { path: "/properties/a".into(), keyword: "format".into(), rule: SchemaRule::Beside("pattern") };
        assert_eq!(
            deep.to_string(),
            "JSON Schema keyword `format` at `/properties/a` beside `pattern` would be ignored"
        );
    }

    #[test]
    fn sizes_name_what_is_too_large() {
        assert_eq!(Invalid::TooLarge(Constrained::Grammar, 256).to_string(), "the grammar is larger than 256 KiB");
        assert_eq!(Invalid::TooLarge(Constrained::Schema, 256).to_string(), "the JSON Schema is larger than 256 KiB");
    }
}
