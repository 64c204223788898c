#![no_main]
//! Trust proofs as a relying party receives them: the VC 2.0 checks, the claims and the proof
//! set, on any JSON (keys come from did:key, so signatures made by the fuzzer can verify).
use atp_core::data_integrity::resolve_did_key;
use atp_core::trust_proof::verify_trust_proof_with;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let issuer = value.get("issuer").and_then(|i| i.as_str()).unwrap_or("did:key:z").to_owned();
    let _ = verify_trust_proof_with(&value, &issuer, &resolve_did_key, 1_767_225_600);
});
