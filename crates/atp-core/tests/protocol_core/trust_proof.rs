//! Trust proofs: issued with the quantum-safe proof set, verified offline, refused after any
//! edit, after `validUntil`, from another issuer, or with a proof missing.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use atp_core::trust_proof::{
    self, MAX_TRUST_PROOF_TTL_SECS, TrustClaims, issue_trust_proof, verify_trust_proof,
};
use atp_crypto::{AlgorithmId, SigningKey};
use serde_json::{Value, json};

const NODE: &str = "did:atp:zQmNode";
const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const TTL: i64 = 300;

fn node_key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[9; 64]).unwrap())
}

fn claims() -> TrustClaims {
    TrustClaims {
        subject: "did:atp:zQmAgent".into(),
        score: 0.731_234_5,
        level: 3,
        evidence_count: 57,
        computed_at_ms: NOW * 1000 - 1500,
    }
}

fn proof() -> Value {
    issue_trust_proof(NODE, node_key(), &claims(), NOW, TTL).unwrap()
}

fn verify(doc: &Value, now: i64) -> Result<trust_proof::VerifiedTrustProof, atp_core::CoreError> {
    verify_trust_proof(doc, NODE, &node_key().public_key(), now)
}

#[test]
fn a_trust_proof_verifies_offline() {
    let doc = proof();
    let v = verify(&doc, NOW + 10).unwrap();
    assert_eq!(v.claims.subject, "did:atp:zQmAgent");
    assert_eq!(v.claims.level, 3);
    assert_eq!(v.claims.score, 0.731_235);
    assert_eq!(v.claims.evidence_count, 57);
    assert_eq!(v.claims.computed_at_ms, NOW * 1000 - 1500);
    assert_eq!(v.valid_until - v.valid_from, TTL);
    assert_eq!(doc["credentialSubject"]["trustLevelName"], "TRUSTED");
    assert_eq!(doc["proof"].as_array().unwrap().len(), 2);
}

#[test]
fn it_fails_after_valid_until() {
    let doc = proof();
    assert!(verify(&doc, NOW + TTL).is_ok());
    assert_eq!(verify(&doc, NOW + TTL + 1).unwrap_err().code(), "RANGE_ERROR");
    assert_eq!(verify(&doc, NOW - 1).unwrap_err().code(), "RANGE_ERROR");
}

#[test]
fn any_edit_fails() {
    let doc = proof();
    let edits: Vec<(&str, Value)> = vec![
        ("/credentialSubject/trustScore", json!(0.99)),
        ("/credentialSubject/trustLevel", json!(4)),
        ("/credentialSubject/trustLevelName", json!("PRIVILEGED")),
        ("/credentialSubject/evidenceCount", json!(58)),
        ("/credentialSubject/id", json!("did:atp:zQmSomeoneElse")),
        ("/credentialSubject/computedAt", json!("2026-01-01T00:00:00Z")),
        ("/validUntil", json!("2026-01-01T01:00:00Z")),
        ("/validFrom", json!("2025-12-31T23:59:00Z")),
    ];
    for (path, value) in edits {
        let mut edited = doc.clone();
        *edited.pointer_mut(path).unwrap() = value;
        let err = verify(&edited, NOW + 1).unwrap_err();
        assert_eq!(err.code(), "CRYPTOGRAPHIC_SECURITY_ERROR", "{path}: {err}");
    }
    let mut added = doc.clone();
    added["credentialSubject"]["note"] = json!("x");
    assert_eq!(verify(&added, NOW + 1).unwrap_err().code(), "CRYPTOGRAPHIC_SECURITY_ERROR");
    // Dropping either proof of the set fails the quantum-safe policy.
    for keep in 0..2 {
        let mut one = doc.clone();
        let p = one["proof"][keep].clone();
        one["proof"] = p;
        assert_eq!(verify(&one, NOW + 1).unwrap_err().code(), "CRYPTOGRAPHIC_SECURITY_ERROR");
    }
}

#[test]
fn another_issuer_or_key_is_refused() {
    let doc = proof();
    let other = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[3; 64]).unwrap();
    let err = verify_trust_proof(&doc, NODE, &other.public_key(), NOW + 1).unwrap_err();
    assert_eq!(err.code(), "CRYPTOGRAPHIC_SECURITY_ERROR");
    let err = verify_trust_proof(&doc, "did:atp:zQmOther", &node_key().public_key(), NOW + 1)
        .unwrap_err();
    assert_eq!(err.code(), "TRUST_PROOF_ISSUER_MISMATCH");
    // A self-consistent proof signed by another key under the trusted node's name.
    let forged = issue_trust_proof(NODE, &other, &claims(), NOW, TTL).unwrap();
    assert_eq!(verify(&forged, NOW + 1).unwrap_err().code(), "CRYPTOGRAPHIC_SECURITY_ERROR");
}

#[test]
fn malformed_claims_and_lifetimes_are_refused() {
    let bad_score = TrustClaims { score: 1.5, ..claims() };
    let err = issue_trust_proof(NODE, node_key(), &bad_score, NOW, TTL).unwrap_err();
    assert_eq!(err.code(), "TRUST_PROOF_INVALID");
    let bad_level = TrustClaims { level: 5, ..claims() };
    let err = issue_trust_proof(NODE, node_key(), &bad_level, NOW, TTL).unwrap_err();
    assert_eq!(err.code(), "TRUST_PROOF_INVALID");
    let too_long =
        issue_trust_proof(NODE, node_key(), &claims(), NOW, MAX_TRUST_PROOF_TTL_SECS + 1);
    assert_eq!(too_long.unwrap_err().code(), "TRUST_PROOF_INVALID");

    // Properly signed by the node but not a trust proof: the signature is fine, the shape is not.
    let mut doc = trust_proof::build_trust_proof(NODE, &claims(), NOW, TTL).unwrap();
    doc["credentialSubject"]["trustLevelName"] = json!("BASIC");
    let options = atp_core::data_integrity::ProofSetOptions::assertion(
        format!("{NODE}#mldsa65"),
        format!("{NODE}#ed25519"),
        "2026-01-01T00:00:00Z",
    );
    let signed =
        atp_core::data_integrity::sign_quantum_safe_proof_set(&doc, node_key(), &options).unwrap();
    assert_eq!(verify(&signed, NOW + 1).unwrap_err().code(), "TRUST_PROOF_INVALID");
}
