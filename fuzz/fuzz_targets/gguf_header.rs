//! The GGUF header reader on arbitrary bytes: an error, never a panic, a hang or a huge
//! allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hearth_engine::gguf::read_header_from(std::io::Cursor::new(data));
});
