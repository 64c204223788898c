//! Verification of a quantum-safe credential proof set and of a 1,000-event key event log.
#![allow(missing_docs, clippy::unwrap_used)]

use atp_core::data_integrity::{self as di, ProofSetOptions, VerifyOptions};
use atp_core::kel::{self, KelState, SignedEvent};
use atp_core::vc::CredentialBuilder;
use atp_crypto::{AlgorithmId, PublicKey, SigningKey};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;

fn composite() -> SigningKey {
    SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap()
}

fn proof_set(c: &mut Criterion) {
    let issuer_key = composite();
    let issuer = "did:atp:zQmIssuer";
    let vc = CredentialBuilder::new(issuer)
        .add_type("AgentOperatorCredential")
        .subject(json!({"id": "did:atp:zQmAgent", "operator": "Example Corp", "capabilities": ["billing"]}))
        .valid_from("2026-01-01T00:00:00Z")
        .build()
        .unwrap();
    let options = ProofSetOptions::assertion(
        format!("{issuer}#mldsa65"),
        format!("{issuer}#ed25519"),
        "2026-01-01T00:00:00Z",
    );
    let signed = di::sign_quantum_safe_proof_set(&vc, &issuer_key, &options).unwrap();
    let (mldsa, ed) = issuer_key.public_key().components().unwrap();
    let resolver = move |vm: &str| -> Result<PublicKey, atp_core::CoreError> {
        Ok(if vm.ends_with("#mldsa65") { mldsa.clone() } else { ed.clone() })
    };
    let now = 1_780_000_000;
    di::verify_credential(&signed, now, &VerifyOptions::default(), &resolver).unwrap();
    c.bench_function("credential/verify-quantum-safe-proof-set", |b| {
        b.iter(|| {
            di::verify_credential(black_box(&signed), now, &VerifyOptions::default(), &resolver)
                .unwrap()
        })
    });
    c.bench_function("credential/sign-quantum-safe-proof-set", |b| {
        b.iter(|| di::sign_quantum_safe_proof_set(black_box(&vc), &issuer_key, &options).unwrap())
    });
}

fn build_log(events: usize) -> Vec<SignedEvent> {
    let mut current = composite();
    let mut next = composite();
    let icp =
        kel::incept(&current, &next.public_key(), Vec::new(), "2026-01-01T00:00:00Z").unwrap();
    let mut log = vec![icp];
    let mut state: KelState = kel::verify_log(&log).unwrap();
    while log.len() < events {
        current = next;
        next = composite();
        let ev = kel::rotate(&state, &current, &next.public_key(), None, "2026-01-01T00:00:01Z")
            .unwrap();
        state = kel::KeyEventLog::default().append(&state, &ev).unwrap();
        log.push(ev);
    }
    drop(current);
    log
}

fn kel_verify(c: &mut Criterion) {
    let log = build_log(1000);
    let mut g = c.benchmark_group("kel");
    g.sample_size(10);
    g.bench_function("verify-1000-events", |b| {
        b.iter(|| kel::verify_log(black_box(&log)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, proof_set, kel_verify);
criterion_main!(benches);
