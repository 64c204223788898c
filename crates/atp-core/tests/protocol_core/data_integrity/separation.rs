//! Domain separation between composite signatures and Data Integrity proofs, and single-bit flips in proof values.

use super::*;

// ------------------------------------------------------------------------------------------
// Domain separation between composite signatures and Data Integrity proofs (docs/design.md §5)
// ------------------------------------------------------------------------------------------

/// The hashData each suite signs for `doc` under `proof` (a full proof object).
fn hash_data(suite: Cryptosuite, doc: &Value, proof: &Value) -> Vec<u8> {
    let config = proof_configuration(doc, proof).unwrap();
    proof_inputs(suite, doc, &config).unwrap().hash_data
}

#[test]
fn composite_components_never_verify_as_data_integrity_proofs() {
    let [alice, _] = parties();
    let composite_pk = alice.key.public_key();
    let (m_key, e_key) = alice.components();
    let (m_pk, e_pk) = (m_key.public_key(), e_key.public_key());
    let signed = alice_vc();
    let doc = unsecured(signed);
    let (pq_proof, ed_proof) = (&signed["proof"][0], &signed["proof"][1]);
    let hd_pq = hash_data(Cryptosuite::MlDsa65Jcs2024, &doc, pq_proof);
    let hd_ed = hash_data(Cryptosuite::EddsaJcs2022, &doc, ed_proof);
    assert_eq!((hd_pq.len(), hd_ed.len()), (96, 64));

    // Adversarial choices of what the composite key signed: the DI messages themselves, the
    // canonical document, with empty and non-empty contexts.
    let canonical = atp_core::jcs::canonicalize(&doc).unwrap();
    let messages: [&[u8]; 3] = [&hd_pq, &hd_ed, &canonical];
    let contexts: [&[u8]; 3] = [b"", b"atp/kel/v1", LABEL_65];
    for msg in messages {
        for ctx in contexts {
            let sig = alice.key.sign(msg, ctx).unwrap();
            assert_eq!(sig.len(), 3309 + 64);
            composite_pk.verify(msg, ctx, &sig).unwrap();
            let (sig_m, sig_e) = sig.split_at(3309);
            // Positive control: the components verify in the composite construction.
            let m_prime =
                atp_crypto::composite_message_representative(AlgorithmId::MlDsa65Ed25519, msg, ctx)
                    .unwrap();
            m_pk.verify(&m_prime, LABEL_65, sig_m).unwrap();
            e_pk.verify(&m_prime, b"", sig_e).unwrap();
            // Raw: neither component verifies over any DI hashData (empty ctx).
            for hd in [&hd_pq, &hd_ed] {
                assert!(m_pk.verify(hd, b"", sig_m).is_err());
                assert!(e_pk.verify(hd, b"", sig_e).is_err());
            }
            // As proofValues in the proof set: rejected.
            let mut forged = signed.clone();
            forged["proof"][0]["proofValue"] =
                json!(Cryptosuite::MlDsa65Jcs2024.encode_proof_value(sig_m));
            assert_kind(
                verify_proofs(&forged, &VerifyOptions::default(), &resolver),
                ProofErrorKind::SignatureInvalid,
            );
            assert_kind(
                verify_proof(&doc, &forged["proof"][0], &any(), &resolver),
                ProofErrorKind::SignatureInvalid,
            );
            let mut forged = signed.clone();
            forged["proof"][1]["proofValue"] =
                json!(Cryptosuite::EddsaJcs2022.encode_proof_value(sig_e));
            assert_kind(
                verify_proofs(&forged, &VerifyOptions::default(), &resolver),
                ProofErrorKind::SignatureInvalid,
            );
            assert_kind(
                verify_proof(&doc, &forged["proof"][1], &any(), &resolver),
                ProofErrorKind::SignatureInvalid,
            );
        }
    }
}

#[test]
fn data_integrity_signatures_never_verify_as_composite_components() {
    let [alice, _] = parties();
    let composite_pk = alice.key.public_key();
    let (m_key, e_key) = alice.components();
    let (m_pk, e_pk) = (m_key.public_key(), e_key.public_key());
    let signed = alice_vc();
    let doc = unsecured(signed);
    let sig_m = Cryptosuite::MlDsa65Jcs2024
        .decode_proof_value(signed["proof"][0]["proofValue"].as_str().unwrap())
        .unwrap();
    let sig_e = Cryptosuite::EddsaJcs2022
        .decode_proof_value(signed["proof"][1]["proofValue"].as_str().unwrap())
        .unwrap();
    let hd_pq = hash_data(Cryptosuite::MlDsa65Jcs2024, &doc, &signed["proof"][0]);
    let hd_ed = hash_data(Cryptosuite::EddsaJcs2022, &doc, &signed["proof"][1]);
    // Positive control: they are valid DI signatures (pure ML-DSA with empty ctx; Ed25519).
    m_pk.verify(&hd_pq, b"", &sig_m).unwrap();
    e_pk.verify(&hd_ed, b"", &sig_e).unwrap();
    // The ML-DSA context alone separates them: the same message under ctx = Label fails.
    assert!(m_pk.verify(&hd_pq, LABEL_65, &sig_m).is_err());

    let canonical = atp_core::jcs::canonicalize(&doc).unwrap();
    let messages: [&[u8]; 3] = [&hd_pq, &hd_ed, &canonical];
    let contexts: [&[u8]; 3] = [b"", b"atp/kel/v1", b"atp/envelope/v1"];
    let mut composite_sig = sig_m.clone();
    composite_sig.extend_from_slice(&sig_e);
    for msg in messages {
        for ctx in contexts {
            let m_prime =
                atp_crypto::composite_message_representative(AlgorithmId::MlDsa65Ed25519, msg, ctx)
                    .unwrap();
            // Structurally different inputs: M' has the fixed prefix and is longer than 64.
            assert!(m_prime.starts_with(atp_crypto::COMPOSITE_PREFIX));
            assert!(m_prime.len() >= 127 && m_prime.len() != hd_ed.len());
            assert!(m_pk.verify(&m_prime, LABEL_65, &sig_m).is_err());
            assert!(e_pk.verify(&m_prime, b"", &sig_e).is_err());
            assert!(composite_pk.verify(msg, ctx, &composite_sig).is_err());
        }
    }
}

// ------------------------------------------------------------------------------------------
// Property: any single-bit flip in a proofValue's bytes fails
// ------------------------------------------------------------------------------------------

fn flip_and_verify(proof_index: usize, suite: Cryptosuite, bit: usize) {
    let signed = alice_vc();
    let pv = signed["proof"][proof_index]["proofValue"].as_str().unwrap();
    let mut bytes = suite.decode_proof_value(pv).unwrap();
    let bit = bit % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
    let mut t = signed.clone();
    t["proof"][proof_index]["proofValue"] = json!(suite.encode_proof_value(&bytes));
    let e = verify_proofs(&t, &VerifyOptions::default(), &resolver).unwrap_err();
    assert_eq!(e.code(), "CRYPTOGRAPHIC_SECURITY_ERROR", "{e}");
    // The failing proof is named by index, so callers (the node's metrics) never parse text.
    match &e {
        CoreError::VcCryptographicSecurity { proof_index: failed, .. } => {
            assert_eq!(*failed, Some(proof_index), "{e}")
        }
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn bit_flip_in_eddsa_proof_value_fails(bit in 0usize..512) {
        flip_and_verify(1, Cryptosuite::EddsaJcs2022, bit);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn bit_flip_in_mldsa65_proof_value_fails(bit in 0usize..3309 * 8) {
        flip_and_verify(0, Cryptosuite::MlDsa65Jcs2024, bit);
    }
}
