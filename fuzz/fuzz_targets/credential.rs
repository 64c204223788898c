#![no_main]
//! VC 2.0 rule checks and Data Integrity proof verification on arbitrary JSON.
use atp_core::data_integrity::{self as di, VerifyOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let _ = atp_core::vc::check_credential(&value);
    let _ = di::verify_proofs(&value, &VerifyOptions::default(), &di::resolve_did_key);
});
