#![no_main]
//! Signed-note and checkpoint-body parsing.
use atp_core::checkpoint::{Checkpoint, SignedNote};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SignedNote::parse(text);
        let _ = Checkpoint::parse_body(text);
    }
});
