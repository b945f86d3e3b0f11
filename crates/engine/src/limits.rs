//! Limits on what one request may hand to recursive code: llama.cpp's GBNF parser and grammar
//! engine and its JSON-Schema converter (which recurse per nested group, per rule in a chain,
//! per repetition, per property and per character of a name), stop strings matched on a
//! model's thread, and chat templates. Each is checked before anything reaches C++ and refused
//! with a 400 that names it. docs/operations.md ("Limits") lists them.

/// Deepest nesting of parenthesised groups in a GBNF grammar.
pub const MAX_GRAMMAR_NESTING: usize = 128;
/// Most rules a GBNF grammar may define.
pub const MAX_GRAMMAR_RULES: usize = 4096;
/// Largest repetition count (`x{n}`, `x{m,n}`) in a GBNF grammar: llama.cpp expands each
/// repetition into a chain of that many rules.
pub const MAX_GRAMMAR_REPEAT: u64 = 4096;
/// Most properties a JSON Schema may declare in all (`properties`, `patternProperties`).
pub const MAX_SCHEMA_PROPERTIES: usize = 1024;
/// Most subschemas (nodes) a JSON Schema may hold in all.
pub const MAX_SCHEMA_NODES: usize = 8192;
/// Longest property name, `$ref` or `pattern` of a JSON Schema, in bytes.
pub const MAX_SCHEMA_NAME_BYTES: usize = 1024;
/// Longest string value in a JSON Schema (`enum`, `const`, ...), in bytes.
pub const MAX_SCHEMA_STRING_BYTES: usize = 16 << 10;
/// Largest length or item count a JSON Schema may ask for (`minLength`, `maxItems`, ...):
/// the converter writes each as a repetition.
pub const MAX_SCHEMA_REPEAT: u64 = MAX_GRAMMAR_REPEAT;
/// Longest stop string, in bytes.
pub const MAX_STOP_BYTES: usize = 1024;
/// Template instructions one chat template rendering may run (minijinja's fuel): far more than
/// any real template needs for a long conversation, far less than a loop that never ends.
pub const TEMPLATE_FUEL: u64 = 5_000_000;

/// Which limit a request went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`MAX_GRAMMAR_NESTING`].
    GrammarNesting,
    /// [`MAX_GRAMMAR_RULES`].
    GrammarRules,
    /// [`MAX_GRAMMAR_REPEAT`].
    GrammarRepeat,
    /// [`MAX_SCHEMA_PROPERTIES`].
    SchemaProperties,
    /// [`MAX_SCHEMA_NODES`].
    SchemaNodes,
    /// [`MAX_SCHEMA_NAME_BYTES`].
    SchemaName,
    /// [`MAX_SCHEMA_STRING_BYTES`].
    SchemaString,
    /// [`MAX_SCHEMA_REPEAT`].
    SchemaRepeat,
    /// [`MAX_STOP_BYTES`].
    StopBytes,
}

impl Limit {
    /// The limit's value.
    pub fn max(self) -> u64 {
        match self {
            Limit::GrammarNesting => MAX_GRAMMAR_NESTING as u64,
            Limit::GrammarRules => MAX_GRAMMAR_RULES as u64,
            Limit::GrammarRepeat => MAX_GRAMMAR_REPEAT,
            Limit::SchemaProperties => MAX_SCHEMA_PROPERTIES as u64,
            Limit::SchemaNodes => MAX_SCHEMA_NODES as u64,
            Limit::SchemaName => MAX_SCHEMA_NAME_BYTES as u64,
            Limit::SchemaString => MAX_SCHEMA_STRING_BYTES as u64,
            Limit::SchemaRepeat => MAX_SCHEMA_REPEAT,
            Limit::StopBytes => MAX_STOP_BYTES as u64,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Limit::GrammarNesting => "the grammar nests groups deeper than",
            Limit::GrammarRules => "the grammar defines more rules than",
            Limit::GrammarRepeat => "a repetition count in the grammar is larger than",
            Limit::SchemaProperties => "the JSON Schema declares more properties than",
            Limit::SchemaNodes => "the JSON Schema holds more subschemas than",
            Limit::SchemaName => "a property name, $ref or pattern in the JSON Schema is longer (bytes) than",
            Limit::SchemaString => "a string in the JSON Schema is longer (bytes) than",
            Limit::SchemaRepeat => "a length or item count in the JSON Schema is larger than",
            Limit::StopBytes => "a stop string is longer (bytes) than",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} the limit of {}", self.what(), self.max())
    }
}
