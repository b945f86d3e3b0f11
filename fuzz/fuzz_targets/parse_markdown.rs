//! The markdown parser on arbitrary bytes: a document or a typed error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = hearth_rag::parse::ParseLimits::default();
    let _ = hearth_rag::parse::parse(data, "doc.md", None, limits);
});
