#![no_main]
//! Signed trust evidence (SubmitEvidence): strict JSON parsing, the semantic checks, and JCS.
//! Whatever parses must canonicalise, and its canonical form must parse to the same value.
use atp_core::evidence::SignedEvidence;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(evidence) = SignedEvidence::from_json(data) else { return };
    let _ = evidence.body.validate();
    let body = evidence.body.canonical_bytes().expect("a parsed body canonicalises");
    let json = serde_json::to_vec(&evidence).expect("a parsed evidence serialises");
    let again = SignedEvidence::from_json(&json).expect("its own serialisation parses");
    assert_eq!(again, evidence);
    assert_eq!(again.body.canonical_bytes().expect("canonical"), body);
});
