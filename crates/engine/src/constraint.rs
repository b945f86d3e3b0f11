//! Constrained decoding: what a request may ask its output to be (any JSON object, a JSON
//! Schema, or a raw GBNF grammar), checked here before anything reaches a model.
//!
//! A JSON Schema is checked keyword by keyword against what the backend's converter honours
//! (llama.cpp's `json_schema_to_grammar`): a keyword it would ignore, which would make the
//! grammar looser than the schema, is refused naming the keyword, never silently dropped.
//! The backend turns the checked constraint into a grammar ([`crate::BackendLoader::grammar`]).

use crate::error::{Constrained, EngineError, Invalid, SchemaFault, SchemaRule};
use crate::limits::{
    Limit, MAX_SCHEMA_NAME_BYTES, MAX_SCHEMA_NODES, MAX_SCHEMA_PROPERTIES, MAX_SCHEMA_REPEAT, MAX_SCHEMA_STRING_BYTES,
};
use serde_json::{Map, Value};

/// What the output must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// Any JSON object (`response_format: json_object`).
    JsonObject,
    /// A value matching a checked JSON Schema (`response_format: json_schema`).
    JsonSchema(Value),
    /// A GBNF grammar as given (llama-server's `grammar` extension).
    Gbnf(String),
}

/// A grammar ready for the sampler: GBNF text whose start rule is `root`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grammar {
    /// The GBNF text.
    pub gbnf: std::sync::Arc<str>,
    /// Empty: the grammar holds from the first token. Otherwise it is lazy: it engages where
    /// the output first shows one of these, and holds from there on.
    pub triggers: Vec<Trigger>,
}

/// What engages a lazy grammar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Trigger {
    /// This text anywhere in the output.
    Word(String),
    /// This text at the start of the output (after whitespace).
    AtStart(String),
}

impl Grammar {
    /// A grammar that holds from the first token.
    pub fn strict(gbnf: impl Into<std::sync::Arc<str>>) -> Self {
        Self { gbnf: gbnf.into(), triggers: Vec::new() }
    }
}

/// Longest grammar or schema accepted, in bytes.
pub const MAX_GRAMMAR_BYTES: usize = 256 << 10;
/// Deepest schema nesting accepted.
const MAX_DEPTH: usize = 64;

/// Keywords that only annotate a schema and never constrain the output.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$anchor",
    "contentMediaType",
    "contentEncoding",
];
/// Keywords the converter honours (for integer bounds and string formats, see below).
const HONOURED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "$defs",
    "definitions",
    "pattern",
    "minLength",
    "maxLength",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
];
/// Formats the converter turns into grammar rules.
const FORMATS: &[&str] = &["date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"];
const TYPES: &[&str] = &["object", "array", "string", "integer", "number", "boolean", "null"];

fn refuse(path: &str, keyword: &str, rule: SchemaRule) -> EngineError {
    let fault = SchemaFault { path: path.to_string(), keyword: keyword.to_string(), rule };
    EngineError::invalid("response_format", Invalid::Schema(fault))
}

/// Checks that every keyword of `schema` is honoured by the grammar converter.
///
/// # Errors
/// [`EngineError::InvalidParam`] (`response_format`) naming the first keyword that is not.
pub fn check_schema(schema: &Value) -> Result<(), EngineError> {
    if serde_json::to_string(schema).map_or(0, |s| s.len()) > MAX_GRAMMAR_BYTES {
        return Err(EngineError::invalid(
            "response_format",
            Invalid::TooLarge(Constrained::Schema, MAX_GRAMMAR_BYTES >> 10),
        ));
    }
    measure(schema).map_err(|l| EngineError::invalid("response_format", Invalid::Limit(l)))?;
    check_node(schema, "", 0)
}

/// Checks a schema's size against [`crate::limits`] without recursing: subschemas, declared
/// properties, names (`properties` keys, `$ref`, `pattern`), other strings and the lengths
/// and counts the converter writes as repetitions.
fn measure(schema: &Value) -> Result<(), Limit> {
    let (mut nodes, mut properties) = (0usize, 0usize);
    let mut stack = vec![schema];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(o) => {
                nodes += 1;
                if nodes > MAX_SCHEMA_NODES {
                    return Err(Limit::SchemaNodes);
                }
                for (k, child) in o {
                    measure_keyword(k, child, &mut properties)?;
                    stack.push(child);
                }
            }
            Value::Array(a) => stack.extend(a),
            Value::String(s) if s.len() > MAX_SCHEMA_STRING_BYTES => return Err(Limit::SchemaString),
            _ => {}
        }
    }
    Ok(())
}

fn measure_keyword(k: &str, v: &Value, properties: &mut usize) -> Result<(), Limit> {
    let long_name = |n: &str| n.len() > MAX_SCHEMA_NAME_BYTES;
    match (k, v) {
        ("properties" | "patternProperties", Value::Object(p)) => {
            *properties += p.len();
            if *properties > MAX_SCHEMA_PROPERTIES {
                return Err(Limit::SchemaProperties);
            }
            if p.keys().any(|n| long_name(n)) {
                return Err(Limit::SchemaName);
            }
        }
        ("$ref" | "pattern", Value::String(n)) if long_name(n) => return Err(Limit::SchemaName),
        ("minLength" | "maxLength" | "minItems" | "maxItems", n) => {
            if n.as_f64().is_some_and(|n| n > MAX_SCHEMA_REPEAT as f64) {
                return Err(Limit::SchemaRepeat);
            }
        }
        _ => {}
    }
    if k.len() > MAX_SCHEMA_NAME_BYTES {
        return Err(Limit::SchemaName);
    }
    Ok(())
}

fn check_node(node: &Value, path: &str, depth: usize) -> Result<(), EngineError> {
    if depth > MAX_DEPTH {
        return Err(EngineError::invalid("response_format", Invalid::TooDeep(MAX_DEPTH)));
    }
    let obj = match node {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(refuse(path, "false", SchemaRule::MatchesNothing)),
        Value::Object(o) => o,
        _ => return Err(EngineError::invalid("response_format", Invalid::NotASchema(path.to_string()))),
    };
    for (k, v) in obj {
        if ANNOTATIONS.contains(&k.as_str()) {
            continue;
        }
        if !HONOURED.contains(&k.as_str()) {
            return Err(refuse(path, k, SchemaRule::Unsupported));
        }
        check_keyword(obj, k, v, path, depth)?;
    }
    check_siblings(obj, path)
}

/// Keywords the converter reads together: it takes `$ref`, `anyOf`/`oneOf`, `const`/`enum`,
/// `pattern` or `format` alone and drops what stands beside them, so such a pair is refused.
fn check_siblings(obj: &Map<String, Value>, path: &str) -> Result<(), EngineError> {
    let has = |k: &str| obj.contains_key(k);
    let structural: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !ANNOTATIONS.contains(k) && !matches!(*k, "$defs" | "definitions"))
        .collect();
    let beside = |lead: &'static str, allowed: &[&str]| -> Result<(), EngineError> {
        match structural.iter().find(|k| **k != lead && !allowed.contains(k)) {
            Some(other) if has(lead) => Err(refuse(path, other, SchemaRule::Beside(lead))),
            _ => Ok(()),
        }
    };
    beside("$ref", &[])?;
    beside("anyOf", &[])?;
    beside("oneOf", &[])?;
    beside("const", &["type"])?;
    beside("enum", &["type"])?;
    beside("allOf", &["type"])?;
    let pairs = [
        ("pattern", "minLength"),
        ("pattern", "maxLength"),
        ("pattern", "format"),
        ("format", "minLength"),
        ("format", "maxLength"),
        ("items", "prefixItems"),
        ("minimum", "exclusiveMinimum"),
        ("maximum", "exclusiveMaximum"),
    ];
    if let Some((lead, other)) = pairs.iter().find(|(a, b)| has(a) && has(b)) {
        return Err(refuse(path, other, SchemaRule::Beside(lead)));
    }
    let array = has("items") || has("prefixItems") || types_of(obj) == ["array"];
    if let Some(k) = ["minItems", "maxItems"].into_iter().find(|k| has(k) && !array) {
        return Err(refuse(path, k, SchemaRule::NeedsArray));
    }
    if has("allOf") && !types_of(obj).iter().all(|t| *t == "object") {
        return Err(refuse(path, "allOf", SchemaRule::AllOfObjects));
    }
    if let Some(Value::Array(parts)) = obj.get("allOf") {
        let objectish = |p: &Value| {
            p.get("$ref").is_some()
                || p.get("properties").is_some()
                || p.get("type").and_then(Value::as_str) == Some("object")
        };
        if !parts.iter().all(objectish) {
            return Err(refuse(path, "allOf", SchemaRule::AllOfParts));
        }
    }
    Ok(())
}

fn types_of(obj: &Map<String, Value>) -> Vec<&str> {
    match obj.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn check_keyword(obj: &Map<String, Value>, k: &str, v: &Value, path: &str, depth: usize) -> Result<(), EngineError> {
    let sub = |p: &str| format!("{path}/{p}");
    match k {
        "type" => {
            let ok = match v {
                Value::String(t) => TYPES.contains(&t.as_str()),
                Value::Array(ts) => !ts.is_empty() && ts.iter().all(|t| t.as_str().is_some_and(|t| TYPES.contains(&t))),
                _ => false,
            };
            if !ok {
                return Err(refuse(path, "type", SchemaRule::TypeNames));
            }
        }
        "properties" | "$defs" | "definitions" => {
            let Value::Object(props) = v else { return Err(refuse(path, k, SchemaRule::Object)) };
            for (name, s) in props {
                check_node(s, &sub(&format!("{k}/{name}")), depth + 1)?;
            }
        }
        "additionalProperties" | "items" => match v {
            Value::Array(items) if k == "items" => {
                for (i, s) in items.iter().enumerate() {
                    check_node(s, &sub(&format!("items/{i}")), depth + 1)?;
                }
            }
            Value::Bool(_) => {}
            s => check_node(s, &sub(k), depth + 1)?,
        },
        "prefixItems" | "anyOf" | "oneOf" | "allOf" => {
            let Value::Array(list) = v else { return Err(refuse(path, k, SchemaRule::Schemas)) };
            if list.is_empty() {
                return Err(refuse(path, k, SchemaRule::Empty));
            }
            for (i, s) in list.iter().enumerate() {
                check_node(s, &sub(&format!("{k}/{i}")), depth + 1)?;
            }
        }
        "required" if !v.as_array().is_some_and(|r| r.iter().all(Value::is_string)) => {
            return Err(refuse(path, k, SchemaRule::Names));
        }
        "enum" if v.as_array().is_none_or(|e| e.is_empty()) => return Err(refuse(path, k, SchemaRule::Enum)),
        "$ref" => {
            let ok =
                v.as_str().is_some_and(|r| r == "#" || r.starts_with("#/$defs/") || r.starts_with("#/definitions/"));
            if !ok {
                return Err(refuse(path, k, SchemaRule::RemoteRef));
            }
        }
        "pattern" if !v.is_string() => return Err(refuse(path, k, SchemaRule::String)),
        "format" if !v.as_str().is_some_and(|f| FORMATS.contains(&f)) => {
            return Err(refuse(path, "format", SchemaRule::Format));
        }
        "minItems" | "maxItems" | "minLength" | "maxLength" if v.as_u64().is_none_or(|n| n > u32::MAX as u64) => {
            return Err(refuse(path, k, SchemaRule::Count));
        }
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
            // The converter bounds integers only; a bound on a number would be dropped.
            if types_of(obj) != ["integer"] {
                return Err(refuse(path, k, SchemaRule::IntegerOnly));
            }
            // The converter reads bounds as 64-bit integers.
            if !v.as_f64().is_some_and(|n| n.abs() <= 9_007_199_254_740_992.0) {
                return Err(refuse(path, k, SchemaRule::Bound));
            }
        }
        _ => {}
    }
    Ok(())
}

/// `schema` as strict mode reads it (OpenAI's `strict: true`): objects that do not say
/// otherwise allow no properties beyond those listed.
pub fn strict(schema: &Value) -> Value {
    let Value::Object(o) = schema else { return schema.clone() };
    let mut out = o.clone();
    for (k, v) in out.iter_mut() {
        match (k.as_str(), v) {
            ("properties" | "$defs" | "definitions", Value::Object(m)) => m.values_mut().for_each(|s| *s = strict(s)),
            ("prefixItems" | "anyOf" | "oneOf" | "allOf" | "items", Value::Array(a)) => {
                a.iter_mut().for_each(|s| *s = strict(s))
            }
            ("items" | "additionalProperties", s) => *s = strict(s),
            _ => {}
        }
    }
    let is_object = types_of(o).contains(&"object") || o.contains_key("properties");
    if is_object && !o.contains_key("additionalProperties") {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(out)
}

/// Checks a raw GBNF grammar's size and that it has a `root` rule (its syntax is checked when
/// the sampler is built, and a bad one fails the request before any token).
///
/// # Errors
/// [`EngineError::InvalidParam`] (`grammar`).
pub fn check_gbnf(gbnf: &str) -> Result<(), EngineError> {
    if gbnf.len() > MAX_GRAMMAR_BYTES {
        return Err(EngineError::invalid("grammar", Invalid::TooLarge(Constrained::Grammar, MAX_GRAMMAR_BYTES >> 10)));
    }
    if gbnf.contains('\0') {
        return Err(EngineError::invalid("grammar", Invalid::Nul));
    }
    let has_root =
        gbnf.lines().any(|l| l.trim_start().strip_prefix("root").is_some_and(|r| r.trim_start().starts_with("::=")));
    if !has_root {
        return Err(EngineError::invalid("grammar", Invalid::NoRoot));
    }
    crate::grammar_shape::check(gbnf).map_err(|l| EngineError::invalid("grammar", Invalid::Limit(l)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limit(r: Result<(), EngineError>) -> Option<Limit> {
        match r {
            Err(EngineError::InvalidParam { reason: Invalid::Limit(l), .. }) => Some(l),
            _ => None,
        }
    }

    // Each of these reached llama.cpp's recursive converter and overflowed the server's stack
    // or ran it for minutes (issue 28).
    #[test]
    fn schemas_past_the_limits_are_refused_naming_the_limit() {
        let name = "n".repeat(200_000);
        assert_eq!(
            limit(check_schema(&json!({"type": "object", "properties": {name: {"type": "string"}}}))),
            Some(Limit::SchemaName)
        );
        let many: Map<String, Value> = (0..2_000).map(|i| (format!("p{i}"), json!({"type": "integer"}))).collect();
        assert_eq!(limit(check_schema(&json!({"type": "object", "properties": many}))), Some(Limit::SchemaProperties));
        let reference = format!("#/$defs/{}", "x".repeat(100_000));
        assert!(limit(check_schema(&json!({"$ref": reference}))).is_some());
        assert_eq!(limit(check_schema(&json!({"type": "string", "maxLength": 1_000_000}))), Some(Limit::SchemaRepeat));
        assert_eq!(
            limit(check_schema(&json!({"type": "string", "pattern": format!("^{}$", "a".repeat(5000))}))),
            Some(Limit::SchemaName)
        );
        let mut deep = json!({"type": "string"});
        for _ in 0..100 {
            deep = json!({"type": "array", "items": deep});
        }
        assert!(check_schema(&deep).is_err(), "deep items nesting");
        let fine: Map<String, Value> = (0..100).map(|i| (format!("p{i}"), json!({"type": "integer"}))).collect();
        assert!(check_schema(&json!({"type": "object", "properties": fine, "required": ["p1"]})).is_ok());
    }

    #[test]
    fn grammars_past_the_limits_are_refused_naming_the_limit() {
        let deep = format!("root ::= {}\"a\"{}", "(".repeat(40_000), ")".repeat(40_000));
        assert_eq!(limit(check_gbnf(&deep)), Some(Limit::GrammarNesting));
        let chain: String = (0..5_000).map(|i| format!("r{i} ::= r{}\n", i + 1)).collect();
        assert_eq!(limit(check_gbnf(&format!("root ::= r0\n{chain}"))), Some(Limit::GrammarRules));
        let e = check_gbnf(&deep).unwrap_err().to_string();
        assert!(e.contains("128"), "the message names the limit: {e}");
    }

    fn message(r: Result<(), EngineError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn common_schemas_pass() {
        let s = json!({
            "title": "Person", "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "description": "who"},
                "age": {"type": "integer", "minimum": 0, "maximum": 150},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                "kind": {"enum": ["a", "b"]},
                "born": {"type": "string", "format": "date"},
                "pet": {"anyOf": [{"$ref": "#/$defs/Pet"}, {"type": "null"}]}
            },
            "required": ["name", "age"], "additionalProperties": false,
            "$defs": {"Pet": {"type": "object", "properties": {"n": {"type": ["string", "null"]}}}}
        });
        assert!(check_schema(&s).is_ok());
        assert!(check_schema(&json!({})).is_ok() && check_schema(&json!(true)).is_ok());
    }

    #[test]
    fn keywords_the_converter_drops_are_refused_by_name() {
        let m = message(check_schema(
            &json!({"type": "object", "properties": {"a": {"type": "string", "format": "email"}}}),
        ));
        assert!(m.contains("`format`") && m.contains("/properties/a"), "{m}");
        let m = message(check_schema(&json!({"type": "number", "minimum": 0.5})));
        assert!(m.contains("`minimum`") && m.contains("integer"), "{m}");
        for k in ["not", "if", "patternProperties", "uniqueItems", "multipleOf", "minProperties", "dependentRequired"] {
            let m = message(check_schema(&json!({ k: {} })));
            assert!(m.contains(&format!("`{k}`")), "{k}: {m}");
        }
        // Pairs the converter would read one of.
        for (s, k) in [
            (json!({"$ref": "#/$defs/A", "type": "object", "$defs": {"A": {}}}), "`type`"),
            (json!({"type": "object", "properties": {}, "anyOf": [{"required": ["a"]}]}), "anyOf"),
            (json!({"type": "string", "pattern": "^a+$", "maxLength": 3}), "`maxLength`"),
            (json!({"type": "string", "format": "date", "minLength": 3}), "`minLength`"),
            (json!({"items": {}, "prefixItems": [{}]}), "`prefixItems`"),
            (json!({"type": "integer", "minimum": 1, "exclusiveMinimum": 0}), "`exclusiveMinimum`"),
            (json!({"minItems": 1}), "`minItems`"),
            (json!({"allOf": [{"type": "string", "pattern": "^a$"}]}), "`allOf`"),
            (json!({"enum": ["a"], "minLength": 1}), "`minLength`"),
            (json!({"type": "integer", "maximum": 1e19}), "`maximum`"),
            (json!({"$ref": "#/properties/a"}), "`$ref`"),
        ] {
            let m = message(check_schema(&s));
            assert!(m.contains(k), "{s}: {m}");
        }
        assert!(check_schema(
            &json!({"allOf": [{"$ref": "#/$defs/A"}, {"properties": {"b": {}}}], "$defs": {"A": {"type": "object"}}})
        )
        .is_ok());
        assert!(check_schema(&json!({"type": "string", "enum": ["a", "b"], "title": "T"})).is_ok());
        let m = message(check_schema(&json!({"$ref": "https://example.com/s.json"})));
        assert!(m.contains("`$ref`"), "{m}");
        assert!(check_schema(&json!({"type": "decimal"})).is_err());
        assert!(check_schema(&json!({"anyOf": []})).is_err());
        assert!(check_schema(&json!(false)).is_err());
    }

    #[test]
    fn deep_or_huge_schemas_are_refused() {
        let mut s = json!({"type": "string"});
        for _ in 0..70 {
            s = json!({"type": "array", "items": s});
        }
        assert!(message(check_schema(&s)).contains("deeper"));
        let big = json!({"enum": vec!["x".repeat(1000); 300]});
        assert!(message(check_schema(&big)).contains("256 KiB"));
    }

    #[test]
    fn strict_closes_objects_that_do_not_say() {
        let s = strict(
            &json!({"type": "object", "properties": {"a": {"type": "object", "properties": {}}, "b": {"type": "object", "additionalProperties": true}}}),
        );
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"]["a"]["additionalProperties"], false);
        assert_eq!(s["properties"]["b"]["additionalProperties"], true);
        // A property named like a keyword is a property, not a keyword.
        let s = strict(&json!({"type": "object", "properties": {"properties": {"type": "string"}}}));
        assert_eq!(s["properties"].as_object().unwrap().len(), 1);
    }

    #[test]
    fn gbnf_needs_a_root_rule() {
        assert!(check_gbnf("root ::= \"yes\" | \"no\"").is_ok());
        assert!(check_gbnf("answer ::= \"yes\"").is_err());
        assert!(check_gbnf("root ::= \"a\0\"").is_err());
    }
}
