//! Keygen, sign and verify for every algorithm, with the raw component crates measured in the
//! same groups, so that the composite's overhead over the sum of its parts can be read off one
//! run: PQClean (`pqcrypto-mldsa`) signs, libcrux (`libcrux-ml-dsa`) verifies, and
//! `ed25519-dalek` does both. PQClean's verifier, which ATP no longer uses (it is not FIPS 204 on
//! the edge cases), stays in the verify group so that the cost of the correct one is read off the
//! same run.
#![allow(missing_docs, clippy::unwrap_used)]

use atp_crypto::{AlgorithmId, SigningContext, SigningKey, composite_message_representative};
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::Signer;
use libcrux_ml_dsa::ml_dsa_65;
use pqcrypto_mldsa::mldsa65;
use pqcrypto_traits::sign::{DetachedSignature, PublicKey as _};
use std::hint::black_box;

const MSG: &[u8] = b"a 64-byte message that stands in for a JCS-canonical KEL event...";

fn algs() -> [AlgorithmId; 6] {
    AlgorithmId::STANDARD
}

fn ctx(alg: AlgorithmId) -> &'static [u8] {
    if alg == AlgorithmId::Ed25519 { b"" } else { SigningContext::Envelope.as_bytes() }
}

fn keygen(c: &mut Criterion) {
    let mut g = c.benchmark_group("keygen");
    for alg in algs() {
        let seed = vec![5u8; alg.seed_len()];
        g.bench_function(alg.name(), |b| {
            b.iter(|| SigningKey::from_seed(alg, black_box(&seed)).unwrap())
        });
    }
    g.finish();
}

fn sign(c: &mut Criterion) {
    let mut g = c.benchmark_group("sign");
    for alg in algs() {
        let key = SigningKey::generate(alg).unwrap();
        g.bench_function(alg.name(), |b| b.iter(|| key.sign(black_box(MSG), ctx(alg)).unwrap()));
    }
    // Raw components on the composite's own input size (M' is prefix + label + ctx + 64 bytes).
    let m_prime = composite_message_representative(
        AlgorithmId::MlDsa65Ed25519,
        MSG,
        ctx(AlgorithmId::MlDsa65),
    )
    .unwrap();
    let (_, mldsa_sk) = mldsa65::keypair();
    let ed = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    g.bench_function("raw/pqcrypto-mldsa65", |b| {
        b.iter(|| {
            mldsa65::detached_sign_ctx(
                black_box(&m_prime),
                b"COMPSIG-MLDSA65-Ed25519-SHA512",
                &mldsa_sk,
            )
        })
    });
    g.bench_function("raw/ed25519-dalek", |b| b.iter(|| ed.sign(black_box(&m_prime))));
    // Both raw components back to back: the floor for the composite, caches included.
    g.bench_function("raw/pqcrypto-mldsa65+ed25519-dalek", |b| {
        b.iter(|| {
            let m = mldsa65::detached_sign_ctx(
                black_box(&m_prime),
                b"COMPSIG-MLDSA65-Ed25519-SHA512",
                &mldsa_sk,
            );
            (m, ed.sign(black_box(&m_prime)))
        })
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");
    for alg in algs() {
        let key = SigningKey::generate(alg).unwrap();
        let pk = key.public_key();
        let sig = key.sign(MSG, ctx(alg)).unwrap();
        g.bench_function(alg.name(), |b| {
            b.iter(|| pk.verify(black_box(MSG), ctx(alg), black_box(&sig)).unwrap())
        });
    }
    let m_prime = composite_message_representative(
        AlgorithmId::MlDsa65Ed25519,
        MSG,
        ctx(AlgorithmId::MlDsa65),
    )
    .unwrap();
    let label: &[u8] = b"COMPSIG-MLDSA65-Ed25519-SHA512";
    let (mldsa_pk, mldsa_sk) = mldsa65::keypair();
    let mldsa_sig = mldsa65::detached_sign_ctx(&m_prime, label, &mldsa_sk);
    let sig_bytes = mldsa_sig.as_bytes().to_vec();
    g.bench_function("raw/pqcrypto-mldsa65 (old, unsound)", |b| {
        b.iter(|| {
            let s = mldsa65::DetachedSignature::from_bytes(black_box(&sig_bytes)).unwrap();
            mldsa65::verify_detached_signature_ctx(&s, &m_prime, label, &mldsa_pk).unwrap()
        })
    });
    let lx_pk = ml_dsa_65::MLDSA65VerificationKey::new(mldsa_pk.as_bytes().try_into().unwrap());
    let lx_sig_bytes: [u8; 3309] = sig_bytes.clone().try_into().unwrap();
    g.bench_function("raw/libcrux-mldsa65", |b| {
        b.iter(|| {
            let s = ml_dsa_65::MLDSA65Signature::new(*black_box(&lx_sig_bytes));
            ml_dsa_65::verify(&lx_pk, &m_prime, label, &s).unwrap()
        })
    });
    let ed = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let vk = ed.verifying_key();
    let ed_sig = ed.sign(&m_prime);
    g.bench_function("raw/ed25519-dalek-strict", |b| {
        b.iter(|| vk.verify_strict(black_box(&m_prime), &ed_sig).unwrap())
    });
    // Both raw components back to back: the floor for the composite, caches included.
    g.bench_function("raw/pqcrypto-mldsa65+ed25519-dalek-strict (old, unsound)", |b| {
        b.iter(|| {
            let s = mldsa65::DetachedSignature::from_bytes(black_box(&sig_bytes)).unwrap();
            mldsa65::verify_detached_signature_ctx(&s, &m_prime, label, &mldsa_pk).unwrap();
            vk.verify_strict(black_box(&m_prime), &ed_sig).unwrap()
        })
    });
    g.bench_function("raw/libcrux-mldsa65+ed25519-dalek-strict", |b| {
        b.iter(|| {
            let s = ml_dsa_65::MLDSA65Signature::new(*black_box(&lx_sig_bytes));
            ml_dsa_65::verify(&lx_pk, &m_prime, label, &s).unwrap();
            vk.verify_strict(black_box(&m_prime), &ed_sig).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, keygen, sign, verify);
criterion_main!(benches);
