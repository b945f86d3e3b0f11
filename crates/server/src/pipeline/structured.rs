//! Structured output on the wire: `response_format` (`json_object`, `json_schema` with
//! `strict`) and the `grammar` extension, turned into the engine's [`Constraint`] and then into
//! a grammar for the sampler. Chat and completions share it; other protocols (Ollama's
//! `format`) build the same [`Constraint`].

use crate::http::error::ApiError;
use hearth_engine::constraint::{strict, Constraint};
use hearth_engine::{Grammar, ModelManager};
use serde_json::Value;

/// The constraint a request asks for, if any.
///
/// # Errors
/// A 400 naming `response_format` (or its field at fault) or `grammar`.
pub fn constraint(response_format: Option<&Value>, grammar: Option<&str>) -> Result<Option<Constraint>, ApiError> {
    let format = match response_format {
        None | Some(Value::Null) => None,
        Some(rf) => format_of(rf)?,
    };
    match (format, grammar) {
        (Some(_), Some(_)) => Err(ApiError::invalid("grammar", "give either `response_format` or `grammar`, not both")),
        (Some(c), None) => Ok(Some(c)),
        (None, Some(g)) => Ok(Some(Constraint::Gbnf(g.to_string()))),
        (None, None) => Ok(None),
    }
}

fn format_of(rf: &Value) -> Result<Option<Constraint>, ApiError> {
    let kind = rf.get("type").and_then(Value::as_str);
    match kind {
        Some("text") => Ok(None),
        // llama-server also reads a `schema` beside `json_object`.
        Some("json_object") => Ok(Some(match rf.get("schema") {
            Some(s) => Constraint::JsonSchema(s.clone()),
            None => Constraint::JsonObject,
        })),
        Some("json_schema") => {
            let Some(js) = rf.get("json_schema").filter(|j| j.is_object()) else {
                return Err(ApiError::invalid(
                    "response_format.json_schema",
                    "`json_schema` must be an object with `schema`",
                ));
            };
            if js.get("name").is_some_and(|n| !n.as_str().is_some_and(valid_name)) {
                return Err(ApiError::invalid(
                    "response_format.json_schema.name",
                    "`name` is 1-64 letters, digits, '_' or '-'",
                ));
            }
            let schema = js.get("schema").cloned().unwrap_or(Value::Object(Default::default()));
            if !schema.is_object() {
                return Err(ApiError::invalid("response_format.json_schema.schema", "`schema` must be an object"));
            }
            let is_strict = js.get("strict").and_then(Value::as_bool).unwrap_or(false);
            Ok(Some(Constraint::JsonSchema(if is_strict { strict(&schema) } else { schema })))
        }
        _ => Err(ApiError::invalid(
            "response_format.type",
            "response_format.type must be \"text\", \"json_object\" or \"json_schema\"",
        )),
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

/// The grammar for a request's constraint (checked, then converted by the backend).
///
/// # Errors
/// A 400 naming the keyword or field the grammar cannot honour; `ignore_eos` with a
/// constraint (the answer must end where the value closes).
pub async fn grammar(
    models: &ModelManager,
    c: Option<&Constraint>,
    ignore_eos: bool,
) -> Result<Option<Grammar>, ApiError> {
    let Some(c) = c else { return Ok(None) };
    if ignore_eos {
        return Err(ApiError::invalid("ignore_eos", "ignore_eos cannot be combined with structured output"));
    }
    Ok(Some(models.grammar(c).await?))
}

/// The grammar for a request's tools.
///
/// # Errors
/// A 400 naming a tool's parameter schema the grammar cannot honour; `ignore_eos` with tools.
pub async fn tool_grammar(
    models: &ModelManager,
    family: hearth_engine::ToolFamily,
    tools: &hearth_engine::ToolRequest,
    ignore_eos: bool,
) -> Result<Grammar, ApiError> {
    if ignore_eos {
        return Err(ApiError::invalid("ignore_eos", "ignore_eos cannot be combined with tools"));
    }
    Ok(models.tool_grammar(family, tools).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(r: Result<Option<Constraint>, ApiError>) -> Option<String> {
        match r {
            Err(ApiError::BadRequest { param, .. }) => param,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn formats_map_to_constraints() {
        assert_eq!(constraint(Some(&json!({"type": "text"})), None).unwrap(), None);
        assert_eq!(constraint(Some(&json!({"type": "json_object"})), None).unwrap(), Some(Constraint::JsonObject));
        let rf = json!({"type": "json_schema", "json_schema": {"name": "p", "strict": true, "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}});
        let Some(Constraint::JsonSchema(s)) = constraint(Some(&rf), None).unwrap() else { panic!() };
        assert_eq!(s["additionalProperties"], false, "strict closes the object");
        assert_eq!(constraint(None, Some("root ::= \"x\"")).unwrap(), Some(Constraint::Gbnf("root ::= \"x\"".into())));
    }

    #[test]
    fn bad_formats_name_their_field() {
        assert_eq!(param(constraint(Some(&json!({"type": "xml"})), None)).as_deref(), Some("response_format.type"));
        assert_eq!(
            param(constraint(Some(&json!({"type": "json_schema"})), None)).as_deref(),
            Some("response_format.json_schema")
        );
        let rf = json!({"type": "json_schema", "json_schema": {"name": "bad name!", "schema": {}}});
        assert_eq!(param(constraint(Some(&rf), None)).as_deref(), Some("response_format.json_schema.name"));
        let rf = json!({"type": "json_schema", "json_schema": {"schema": 3}});
        assert_eq!(param(constraint(Some(&rf), None)).as_deref(), Some("response_format.json_schema.schema"));
        assert_eq!(
            param(constraint(Some(&json!({"type": "json_object"})), Some("root ::= \"x\""))).as_deref(),
            Some("grammar")
        );
    }
}
