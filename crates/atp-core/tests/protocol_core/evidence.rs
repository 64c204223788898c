//! Signed trust evidence: signing and verification of every kind, the co-signed receipt, and
//! every refusal code (malformed, self-evidence, unknown signer, key window, future, signature).
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use atp_core::CoreError;
use atp_core::envelope::KeyValidity;
use atp_core::evidence::{
    self, EvidenceBody, EvidenceKind, EvidenceVerifyContext, MAX_EVIDENCE_BYTES, Outcome, Severity,
    SignedEvidence,
};
use atp_crypto::{AlgorithmId, SigningKey};
use proptest::prelude::*;

const ALICE: &str = "did:atp:zQmAlice";
const BOB: &str = "did:atp:zQmBob";
const CREATED: &str = "2026-01-01T00:00:00Z";
const CREATED_MS: i64 = 1_767_225_600_000;
const NOW: i64 = CREATED_MS + 60_000;

fn key(seed: u8) -> &'static SigningKey {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (0..3u8)
            .map(|i| SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[i + 1; 64]).unwrap())
            .collect()
    })[usize::from(seed)]
}

/// Alice holds key 0 (sequence 0), Bob key 1 (sequence 0); nobody else is known.
fn lookup(did: &str, seq: u64) -> Option<KeyValidity> {
    let k = match (did, seq) {
        (ALICE, 0) => key(0),
        (BOB, 0) => key(1),
        _ => return None,
    };
    Some(KeyValidity { key: k.public_key(), valid_from: CREATED_MS - 1000, valid_until: None })
}

fn ctx() -> EvidenceVerifyContext<'static> {
    EvidenceVerifyContext { key_lookup: &lookup, now_ms: NOW, max_skew_ms: 60_000 }
}

fn receipt_body(outcome: Outcome) -> EvidenceBody {
    EvidenceBody::receipt(ALICE, 0, BOB, 0, CREATED, "search.web", outcome)
}

fn code(r: Result<impl std::fmt::Debug, CoreError>) -> &'static str {
    r.unwrap_err().code()
}

#[test]
fn every_kind_signs_and_verifies() {
    let endorsement = EvidenceBody::endorsement(ALICE, 0, BOB, CREATED, Some("code.review"))
        .sign(key(0))
        .unwrap();
    let v = evidence::verify(&endorsement, &ctx()).unwrap();
    assert_eq!(v.body.kind, EvidenceKind::Endorsement);
    assert_eq!(v.created_ms, CREATED_MS);

    let incident =
        EvidenceBody::incident(ALICE, 0, BOB, CREATED, Severity::High, None).sign(key(0)).unwrap();
    assert_eq!(evidence::verify(&incident, &ctx()).unwrap().body.severity, Some(Severity::High));

    let receipt = receipt_body(Outcome::Success).sign(key(0)).unwrap().countersign(key(1)).unwrap();
    let json = receipt.to_json().unwrap();
    let v = evidence::verify_json(json.as_bytes(), &ctx()).unwrap();
    assert_eq!(v.body.outcome, Some(Outcome::Success));
}

#[test]
fn the_content_hash_ignores_the_randomised_signature() {
    let a = receipt_body(Outcome::Success).sign(key(0)).unwrap().countersign(key(1)).unwrap();
    let b = receipt_body(Outcome::Success).sign(key(0)).unwrap().countersign(key(1)).unwrap();
    assert_ne!(a.sig, b.sig, "ML-DSA signing is randomised");
    let (va, vb) = (evidence::verify(&a, &ctx()).unwrap(), evidence::verify(&b, &ctx()).unwrap());
    assert_eq!(va.content_hash, vb.content_hash);
    let other = evidence::verify(
        &receipt_body(Outcome::Failure).sign(key(0)).unwrap().countersign(key(1)).unwrap(),
        &ctx(),
    )
    .unwrap();
    assert_ne!(va.content_hash, other.content_hash);
}

#[test]
fn a_receipt_signed_by_one_party_alone_is_refused() {
    let alone = receipt_body(Outcome::Success).sign(key(0)).unwrap();
    assert_eq!(code(evidence::verify(&alone, &ctx())), "EVIDENCE_BAD_SIGNATURE");
    // Countersigned by someone other than the subject.
    let wrong = receipt_body(Outcome::Success).sign(key(0)).unwrap().countersign(key(2)).unwrap();
    assert_eq!(code(evidence::verify(&wrong, &ctx())), "EVIDENCE_BAD_SIGNATURE");
    // The subject's signature on a non-receipt.
    let mut endorsement =
        EvidenceBody::endorsement(ALICE, 0, BOB, CREATED, None).sign(key(0)).unwrap();
    endorsement.subject_sig = Some(endorsement.sig.clone());
    assert_eq!(code(evidence::verify(&endorsement, &ctx())), "EVIDENCE_MALFORMED");
}

#[test]
fn self_evidence_is_refused_with_its_own_code() {
    let body = EvidenceBody::endorsement(ALICE, 0, ALICE, CREATED, None);
    assert_eq!(code(body.clone().sign(key(0))), "EVIDENCE_SELF");
    let forged = SignedEvidence { body, sig: "AA".into(), subject_sig: None };
    assert_eq!(code(evidence::verify(&forged, &ctx())), "EVIDENCE_SELF");
    let receipt = EvidenceBody::receipt(ALICE, 0, ALICE, 0, CREATED, "x", Outcome::Success);
    assert_eq!(code(receipt.sign(key(0))), "EVIDENCE_SELF");
}

#[test]
fn tampering_breaks_the_signature() {
    let signed =
        EvidenceBody::incident(ALICE, 0, BOB, CREATED, Severity::Low, None).sign(key(0)).unwrap();
    let mut raised = signed.clone();
    raised.body.severity = Some(Severity::High);
    assert_eq!(code(evidence::verify(&raised, &ctx())), "EVIDENCE_BAD_SIGNATURE");
    let mut moved = signed.clone();
    moved.body.created = "2026-01-01T00:00:01Z".into();
    assert_eq!(code(evidence::verify(&moved, &ctx())), "EVIDENCE_BAD_SIGNATURE");
    let mut garbage = signed;
    garbage.sig = "not base64!".into();
    assert_eq!(code(evidence::verify(&garbage, &ctx())), "EVIDENCE_BAD_SIGNATURE");
}

#[test]
fn unknown_signers_keys_outside_their_window_and_future_evidence_are_refused() {
    let unknown = EvidenceBody::endorsement(ALICE, 3, BOB, CREATED, None).sign(key(0)).unwrap();
    assert_eq!(code(evidence::verify(&unknown, &ctx())), "EVIDENCE_UNKNOWN_SIGNER");

    let rotated = |did: &str, seq: u64| {
        lookup(did, seq).map(|k| KeyValidity { valid_until: Some(CREATED_MS), ..k })
    };
    let ctx_rotated = EvidenceVerifyContext { key_lookup: &rotated, now_ms: NOW, max_skew_ms: 0 };
    let signed = EvidenceBody::endorsement(ALICE, 0, BOB, CREATED, None).sign(key(0)).unwrap();
    assert_eq!(code(evidence::verify(&signed, &ctx_rotated)), "EVIDENCE_KEY_NOT_VALID_AT_CREATION");

    let early = EvidenceVerifyContext { now_ms: CREATED_MS - 120_000, ..ctx() };
    assert_eq!(code(evidence::verify(&signed, &early)), "EVIDENCE_NOT_YET_VALID");
}

#[test]
fn strict_parsing() {
    let good = EvidenceBody::endorsement(ALICE, 0, BOB, CREATED, None).sign(key(0)).unwrap();
    let json = good.to_json().unwrap();
    assert!(SignedEvidence::from_json(json.as_bytes()).is_ok());
    let cases = [
        json.replacen("{\"body\":{", "{\"body\":{\"extra\":1,", 1),
        json.replacen("{\"body\":{", "{\"body\":{\"capability\":null,", 1),
        json.replacen("\"sig\":", "\"sig\":\"AA\",\"sig\":", 1),
        json.replacen("Endorsement", "Rumour", 1),
        "[]".to_owned(),
        "{".to_owned(),
    ];
    for bad in cases {
        assert_eq!(code(SignedEvidence::from_json(bad.as_bytes())), "EVIDENCE_MALFORMED", "{bad}");
    }
    let huge = vec![b' '; MAX_EVIDENCE_BYTES + 1];
    assert_eq!(code(SignedEvidence::from_json(&huge)), "EVIDENCE_TOO_LARGE");

    let shape = [
        EvidenceBody { outcome: Some(Outcome::Success), ..good.body.clone() },
        EvidenceBody { capability: Some("bad capability".into()), ..good.body.clone() },
        EvidenceBody { created: "2026-01-01 00:00:00".into(), ..good.body.clone() },
        EvidenceBody { v: "atp/evidence/2".into(), ..good.body.clone() },
        EvidenceBody { subject: "not-a-did".into(), ..good.body.clone() },
        EvidenceBody {
            severity: None,
            ..EvidenceBody::incident(ALICE, 0, BOB, CREATED, Severity::Low, None)
        },
        EvidenceBody { outcome: None, ..receipt_body(Outcome::Success) },
    ];
    for body in shape {
        assert_eq!(code(body.validate()), "EVIDENCE_MALFORMED", "{body:?}");
    }
    let long = EvidenceBody { capability: Some("a".repeat(129)), ..good.body };
    assert_eq!(code(long.validate()), "EVIDENCE_TOO_LARGE");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Flipping any byte of the wire form never yields evidence that verifies with a different
    /// body: it is refused, or it parses to the same body (a change inside the base64 padding
    /// bits cannot happen: base64url without padding is canonical).
    #[test]
    fn any_single_byte_change_is_refused(pos in 0usize..400, delta in 1u8..=255) {
        let signed = EvidenceBody::endorsement(ALICE, 0, BOB, CREATED, Some("x"))
            .sign(key(0)).unwrap();
        let mut bytes = signed.to_json().unwrap().into_bytes();
        let i = pos % bytes.len();
        bytes[i] = bytes[i].wrapping_add(delta);
        if let Ok(v) = evidence::verify_json(&bytes, &ctx()) {
            prop_assert_eq!(v.body, signed.body);
        }
    }
}
