#![no_main]
//! Key event log parsing and offline verification of arbitrary JSON.
use atp_core::kel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = kel::parse_log(data) {
        let _ = kel::verify_log(&events);
    }
    let _ = kel::SignedEvent::from_json(data);
});
