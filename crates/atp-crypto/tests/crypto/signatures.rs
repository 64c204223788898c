//! Round trips, tamper resistance and downgrade resistance of every algorithm.
#![allow(clippy::unwrap_used)]

use atp_crypto::batch::{BatchItem, verify_batch};
use atp_crypto::{AlgorithmId, CryptoError, CryptoProvider, PublicKey, SigningContext, SigningKey};
use proptest::prelude::*;
use std::sync::OnceLock;

const ALGS: [AlgorithmId; 6] = AlgorithmId::STANDARD;

fn keys() -> &'static Vec<SigningKey> {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    KEYS.get_or_init(|| ALGS.iter().map(|a| SigningKey::generate(*a).unwrap()).collect())
}

fn ctx_for(alg: AlgorithmId, ctx: &[u8]) -> Vec<u8> {
    if alg == AlgorithmId::Ed25519 { Vec::new() } else { ctx.to_vec() }
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    let i = bit % (v.len() * 8);
    v[i / 8] ^= 1 << (i % 8);
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sign_verify_round_trip(which in 0usize..6, msg in proptest::collection::vec(any::<u8>(), 0..512),
                              ctx in proptest::collection::vec(any::<u8>(), 0..64)) {
        let key = &keys()[which];
        let ctx = ctx_for(key.algorithm(), &ctx);
        let sig = key.sign(&msg, &ctx).unwrap();
        prop_assert_eq!(sig.len(), key.algorithm().signature_len());
        key.public_key().verify(&msg, &ctx, &sig).unwrap();
    }

    #[test]
    fn any_bit_flip_fails(which in 0usize..6, msg in proptest::collection::vec(any::<u8>(), 1..256),
                          ctx in proptest::collection::vec(any::<u8>(), 1..32), bit in any::<usize>()) {
        let key = &keys()[which];
        let alg = key.algorithm();
        let ctx = ctx_for(alg, &ctx);
        let pk = key.public_key();
        let sig = key.sign(&msg, &ctx).unwrap();
        // Signature.
        prop_assert!(pk.verify(&msg, &ctx, &flip(&sig, bit)).is_err());
        // Message.
        prop_assert!(pk.verify(&flip(&msg, bit), &ctx, &sig).is_err());
        // Context.
        if !ctx.is_empty() {
            prop_assert!(pk.verify(&msg, &flip(&ctx, bit), &sig).is_err());
        }
        // Public key: either it no longer parses, or it no longer verifies.
        let bad_pk = flip(pk.as_bytes(), bit);
        if let Ok(bad) = PublicKey::from_bytes(alg, &bad_pk) {
            prop_assert!(bad.verify(&msg, &ctx, &sig).is_err());
        }
    }

    #[test]
    fn multikey_round_trip(which in 0usize..4, seed in any::<[u8; 32]>()) {
        let key = SigningKey::from_seed(ALGS[which], &seed).unwrap().public_key();
        let mk = key.to_multikey().unwrap();
        prop_assert_eq!(PublicKey::from_multikey(&mk).unwrap(), key);
    }
}

#[test]
fn seeds_are_deterministic_and_distinct() {
    for alg in ALGS {
        let seed = vec![3u8; alg.seed_len()];
        let a = SigningKey::from_seed(alg, &seed).unwrap();
        let b = SigningKey::from_seed(alg, &seed).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a, b);
        let c = SigningKey::generate(alg).unwrap();
        assert_ne!(a.public_key(), c.public_key());
        assert_ne!(a, c);
        assert!(SigningKey::from_seed(alg, &seed[1..]).is_err(), "short seed refused");
        // Debug output never contains the secret.
        let dbg = format!("{a:?}");
        assert!(dbg.contains("redacted") && !dbg.contains(&hex::encode(&seed)));
    }
}

#[test]
fn contexts_are_distinct_and_bound() {
    let mut seen = std::collections::HashSet::new();
    for c in SigningContext::ALL {
        assert!(c.as_str().starts_with("atp/") && c.as_str().ends_with("/v1"));
        assert!(seen.insert(c.as_bytes()), "duplicate context {}", c.as_str());
    }
    let key = &keys()[5];
    let sig = key.sign(b"m", SigningContext::Kel.as_bytes()).unwrap();
    for other in SigningContext::ALL.iter().filter(|c| **c != SigningContext::Kel) {
        assert!(key.public_key().verify(b"m", other.as_bytes(), &sig).is_err());
    }
}

#[test]
fn ed25519_refuses_context_and_long_contexts_refused() {
    let ed = &keys()[0];
    assert_eq!(ed.sign(b"m", b"atp/kel/v1"), Err(CryptoError::ContextUnsupported("Ed25519")));
    let composite = &keys()[5];
    assert_eq!(composite.sign(b"m", &[0u8; 256]), Err(CryptoError::ContextTooLong(256)));
}

/// Downgrade: a composite signature is only valid with both halves valid, for the same key.
#[test]
fn composite_downgrade_attempts_fail() {
    for (which, mldsa_len) in [(4usize, 2420usize), (5, 3309)] {
        let key = &keys()[which];
        let pk = key.public_key();
        let other = SigningKey::generate(key.algorithm()).unwrap();
        let msg = b"transfer 100 credits";
        let ctx = SigningContext::Envelope.as_bytes();
        let sig = key.sign(msg, ctx).unwrap();
        let other_sig = other.sign(msg, ctx).unwrap();
        let (m, e) = sig.split_at(mldsa_len);
        let (om, oe) = other_sig.split_at(mldsa_len);

        let component = |r: Result<(), CryptoError>| match r {
            Err(CryptoError::CompositeComponentInvalid { component, .. }) => component,
            other => panic!("expected a component failure, got {other:?}"),
        };
        // Garbage in either part.
        assert_eq!(
            component(pk.verify(msg, ctx, &[&vec![0u8; m.len()][..], e].concat())),
            "ML-DSA"
        );
        assert_eq!(component(pk.verify(msg, ctx, &[m, &[0u8; 64][..]].concat())), "Ed25519");
        // A part swapped with another key's valid part for the same message.
        assert_eq!(component(pk.verify(msg, ctx, &[om, e].concat())), "ML-DSA");
        assert_eq!(component(pk.verify(msg, ctx, &[m, oe].concat())), "Ed25519");
        // A part removed: only one component present.
        assert!(matches!(pk.verify(msg, ctx, m), Err(CryptoError::SignatureLength { .. })));
        assert!(matches!(pk.verify(msg, ctx, e), Err(CryptoError::SignatureLength { .. })));
        assert!(pk.verify(msg, ctx, &[]).is_err());
        // A bare component signature over the message (no composite encoding) under the
        // component keys must not verify as the composite either.
        let (mk, ek) = key.components().unwrap();
        let bare_ml = mk.sign(msg, ctx).unwrap();
        let bare_ed = ek.sign(msg, &[]).unwrap();
        assert!(pk.verify(msg, ctx, &[bare_ml.as_slice(), bare_ed.as_slice()].concat()).is_err());
        // And the composite's halves do not verify as bare component signatures.
        let (mpk, epk) = pk.components().unwrap();
        assert!(mpk.verify(msg, ctx, m).is_err());
        assert!(epk.verify(msg, &[], e).is_err());
        // The real one still verifies.
        pk.verify(msg, ctx, &sig).unwrap();
    }
}

#[test]
fn default_policy_accepts_composites_only() {
    let policy = CryptoProvider::default_quantum_safe();
    for key in keys() {
        let alg = key.algorithm();
        let ctx = ctx_for(alg, b"c");
        let sig = key.sign(b"m", &ctx).unwrap();
        let r = policy.verify(&key.public_key(), b"m", &ctx, &sig);
        if alg.is_composite() {
            r.unwrap();
        } else {
            assert_eq!(r, Err(CryptoError::AlgorithmNotAllowed(alg.name())));
        }
        CryptoProvider::all_standard().verify(&key.public_key(), b"m", &ctx, &sig).unwrap();
    }
}

#[test]
fn batch_reports_exactly_the_failing_items() {
    let policy = CryptoProvider::all_standard();
    let msgs: Vec<Vec<u8>> = (0..12u8).map(|i| vec![i; 40]).collect();
    let mut sigs = Vec::new();
    let mut pks = Vec::new();
    let mut ctxs = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let key = &keys()[i % 6];
        let ctx = ctx_for(key.algorithm(), b"batch");
        sigs.push(key.sign(m, &ctx).unwrap());
        pks.push(key.public_key());
        ctxs.push(ctx);
    }
    let items = |sigs: &Vec<Vec<u8>>| -> Vec<Vec<u8>> { sigs.clone() };
    let all = items(&sigs);
    let batch: Vec<BatchItem<'_>> = (0..12)
        .map(|i| BatchItem { key: &pks[i], message: &msgs[i], ctx: &ctxs[i], signature: &all[i] })
        .collect();
    verify_batch(&policy, &batch).unwrap();

    // Break an Ed25519 item, the Ed25519 half of a composite, and an ML-DSA item.
    let mut bad = sigs.clone();
    bad[6][10] ^= 1; // Ed25519
    let l = bad[11].len();
    bad[11][l - 1] ^= 1; // composite's Ed25519 half
    bad[2][0] ^= 1; // ML-DSA-65
    let batch: Vec<BatchItem<'_>> = (0..12)
        .map(|i| BatchItem { key: &pks[i], message: &msgs[i], ctx: &ctxs[i], signature: &bad[i] })
        .collect();
    assert_eq!(
        verify_batch(&policy, &batch),
        Err(CryptoError::BatchFailed { failed: vec![2, 6, 11] })
    );

    // Under the composite-only policy, every non-composite item fails.
    let batch: Vec<BatchItem<'_>> = (0..12)
        .map(|i| BatchItem { key: &pks[i], message: &msgs[i], ctx: &ctxs[i], signature: &all[i] })
        .collect();
    let Err(CryptoError::BatchFailed { failed }) =
        verify_batch(&CryptoProvider::default_quantum_safe(), &batch)
    else {
        panic!("expected failures");
    };
    assert_eq!(failed, vec![0, 1, 2, 3, 6, 7, 8, 9]);
}

/// An Ed25519 signature whose `R` carries the order-2 torsion point (signed with a chosen nonce
/// `r`: `R = rB + T`, `s = r + H(R, A, M) a`) satisfies `sB = R - T + kA`, so the strict single
/// verification refuses it. A batch must refuse it too: a cofactorless batch equation with
/// random weights accepts it whenever the weight is even (about half of these messages).
#[test]
fn batch_never_accepts_what_single_verification_refuses() {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};

    let seed = [9u8; 32];
    let key = SigningKey::from_seed(AlgorithmId::Ed25519, &seed).unwrap();
    let pk = key.public_key();
    let expanded = Sha512::digest(seed);
    let mut clamped = [0u8; 32];
    clamped.copy_from_slice(&expanded[..32]);
    clamped[0] &= 248;
    clamped[31] &= 127;
    clamped[31] |= 64;
    let a = Scalar::from_bytes_mod_order(clamped);
    let big_a = (ED25519_BASEPOINT_POINT * a).compress();
    assert_eq!(pk.as_bytes(), big_a.as_bytes(), "the secret scalar is the key's");
    // T = (0, -1), of order 2: y = p - 1.
    let mut minus_one = [0xffu8; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    let torsion = CompressedEdwardsY(minus_one).decompress().unwrap();
    assert!(torsion.is_small_order());

    // An Ed25519 signature with the chosen nonce `r`, its commitment sent as `big_r`.
    let sign_with_nonce = |r: Scalar, big_r: CompressedEdwardsY, msg: &[u8]| {
        let k = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(big_r.as_bytes())
                .chain_update(big_a.as_bytes())
                .chain_update(msg)
                .finalize()
                .into(),
        );
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(big_r.as_bytes());
        sig[32..].copy_from_slice((r + k * a).as_bytes());
        sig
    };

    let policy = CryptoProvider::all_standard();
    for i in 0..32u8 {
        let msg = [b'm', i];
        let r = Scalar::from_bytes_mod_order([i.wrapping_add(1); 32]);
        let sig = sign_with_nonce(r, (ED25519_BASEPOINT_POINT * r + torsion).compress(), &msg);
        assert!(pk.verify(&msg, &[], &sig).is_err(), "message {i}: single verification");
        let item = BatchItem { key: &pk, message: &msg, ctx: &[], signature: &sig };
        assert_eq!(
            verify_batch(&policy, &[item]),
            Err(CryptoError::BatchFailed { failed: vec![0] }),
            "message {i}: batch"
        );
    }
    // The same construction without the torsion point is a valid signature (the test would
    // prove nothing if every signature it builds were broken).
    let r = Scalar::from_bytes_mod_order([7u8; 32]);
    let msg = b"control";
    let sig = sign_with_nonce(r, (ED25519_BASEPOINT_POINT * r).compress(), msg);
    pk.verify(msg, &[], &sig).unwrap();
    let item = BatchItem { key: &pk, message: msg, ctx: &[], signature: &sig };
    verify_batch(&policy, &[item]).unwrap();
}

#[cfg(feature = "legacy-dilithium")]
#[test]
fn legacy_dilithium_is_distinct_and_rejected_by_default() {
    let key = SigningKey::generate(AlgorithmId::LegacyDilithium3).unwrap();
    let sig = key.sign(b"m", &[]).unwrap();
    let pk = key.public_key();
    pk.verify(b"m", &[], &sig).unwrap();
    for policy in [CryptoProvider::default_quantum_safe(), CryptoProvider::all_standard()] {
        assert_eq!(
            policy.verify(&pk, b"m", &[], &sig),
            Err(CryptoError::AlgorithmNotAllowed("legacy-dilithium3"))
        );
    }
    // The same bytes read as an ML-DSA-65 key: a round-3 Dilithium signature is not ML-DSA.
    let as_mldsa = PublicKey::from_bytes(AlgorithmId::MlDsa65, pk.as_bytes()).unwrap();
    assert!(as_mldsa.verify(b"m", &[], &sig).is_err());
    assert!(key.sign(b"m", b"ctx").is_err(), "legacy scheme has no context");
}
