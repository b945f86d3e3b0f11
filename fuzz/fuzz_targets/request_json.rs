//! Request validation from raw JSON bytes: chat and text completion bodies go through the
//! server's checks (messages, tools, response formats and grammars, sampling, stops); each
//! is accepted or refused with an error, never a panic.
#![no_main]

use hearth_engine::constraint::{check_gbnf, check_schema, Constraint};
use hearth_engine::SamplingDefaults;
use hearth_protocol::openai::{ChatCompletionRequest, CompletionRequest};
use hearth_server::pipeline::{structured, tools, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<ChatCompletionRequest>(data) {
        // Every field that does not need the model, in one pass.
        let _ = validate::check_chat(&req, &SamplingDefaults::default(), validate::OPENAI);
        // The checks that bound what reaches llama.cpp's recursive grammar code (issue 28).
        if let Ok(Some(c)) = structured::constraint(req.response_format.as_ref(), req.grammar.as_deref()) {
            let _ = match c {
                Constraint::JsonSchema(s) => check_schema(&s),
                Constraint::Gbnf(g) => check_gbnf(&g),
                Constraint::JsonObject => Ok(()),
            };
        }
        let _ = tools::tool_request(req.tools.as_deref(), req.tool_choice.as_ref(), req.parallel_tool_calls);
    }
    if let Ok(req) = serde_json::from_slice::<CompletionRequest>(data) {
        let _ = validate::completion_request(req, &SamplingDefaults::default(), validate::LENIENT);
    }
});
