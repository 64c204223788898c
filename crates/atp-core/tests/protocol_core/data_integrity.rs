//! Data Integrity proofs: the W3C vectors byte for byte, quantum-safe proof sets and policy,
//! presentations, tampering, limits, and the domain separation between composite signatures
//! and Data Integrity proofs (docs/design.md §5).
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::OnceLock;

use atp_core::CoreError;
use atp_core::data_integrity::{
    self as di, Cryptosuite, MAX_DOCUMENT_BYTES, MAX_DOCUMENT_DEPTH, MAX_PROOFS, ProofErrorKind,
    ProofOptions, ProofPolicy, ProofSetOptions, VerifyOptions, create_proof, proof_configuration,
    proof_inputs, resolve_did_key, sign_proof, sign_quantum_safe_proof_set, verify_proof,
    verify_proofs,
};
use atp_core::vc::{CredentialBuilder, PresentationBuilder};
use atp_crypto::{AlgorithmId, PublicKey, SigningKey};
use proptest::prelude::*;
use serde_json::{Value, json};

const EDDSA: &str = "vc-di-eddsa/TestVectors";
const QS: &str = "di-quantum-safe/testVectors";
const LABEL_65: &[u8] = b"COMPSIG-MLDSA65-Ed25519-SHA512";
const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const CREATED: &str = "2026-01-01T00:00:00Z";

fn text(rel: &str) -> Option<String> {
    atp_test_vectors::read_text(rel).map(|t| t.trim().to_owned())
}

#[track_caller]
fn assert_kind(r: Result<impl std::fmt::Debug, CoreError>, kind: ProofErrorKind) {
    let e = r.unwrap_err();
    assert_eq!(e.code(), "CRYPTOGRAPHIC_SECURITY_ERROR", "{e}");
    match e {
        CoreError::VcCryptographicSecurity { kind: k, .. } => assert_eq!(k, kind, "{e}"),
        other => panic!("expected {kind}, got {other:?}"),
    }
}

fn unsecured(doc: &Value) -> Value {
    let mut d = doc.clone();
    d.as_object_mut().unwrap().shift_remove("proof");
    d
}

fn any() -> VerifyOptions {
    VerifyOptions::assertion().with_policy(ProofPolicy::Any)
}

// ------------------------------------------------------------------------------------------
// eddsa-jcs-2022: every intermediate value of the W3C vectors
// ------------------------------------------------------------------------------------------

fn vector_ed25519_key() -> Option<SigningKey> {
    let kp = atp_test_vectors::read_json(&format!("{EDDSA}/keyPair.json"))?;
    let (base, bytes) = multibase::decode(kp["privateKeyMultibase"].as_str().unwrap()).unwrap();
    assert_eq!(base, multibase::Base::Base58Btc);
    assert_eq!(&bytes[..2], &[0x80, 0x26], "ed25519-priv multicodec prefix");
    let key = SigningKey::from_seed(AlgorithmId::Ed25519, &bytes[2..]).unwrap();
    assert_eq!(key.public_key().to_multikey().unwrap(), kp["publicKeyMultibase"].as_str().unwrap());
    Some(key)
}

#[test]
fn eddsa_jcs_2022_vectors_byte_for_byte() {
    let Some(key) = vector_ed25519_key() else { return };
    let dir = format!("{EDDSA}/eddsa-jcs-2022");
    let Some(unsigned) = atp_test_vectors::read_json(&format!("{EDDSA}/unsigned.json")) else {
        return;
    };
    let Some(config_json) = atp_test_vectors::read_json(&format!("{dir}/proofConfigJCS.json"))
    else {
        return;
    };
    let Some(signed) = atp_test_vectors::read_json(&format!("{dir}/signedJCS.json")) else {
        return;
    };
    let t = |name: &str| text(&format!("{dir}/{name}")).unwrap();

    let vm = config_json["verificationMethod"].as_str().unwrap();
    let options = ProofOptions::assertion(Cryptosuite::EddsaJcs2022, vm)
        .created(config_json["created"].as_str().unwrap());

    // The proof we create, without proofValue, is the vector's proof configuration.
    let proof = create_proof(&unsigned, &options, &key).unwrap();
    let mut proof_options = proof.clone();
    proof_options.as_object_mut().unwrap().remove("proofValue");
    assert_eq!(proof_options, config_json);

    // Transformation, configuration, hashes.
    let config = proof_configuration(&unsigned, &proof).unwrap();
    let inputs = proof_inputs(Cryptosuite::EddsaJcs2022, &unsigned, &config).unwrap();
    assert_eq!(String::from_utf8(inputs.canonical_document.clone()).unwrap(), t("canonDocJCS.txt"));
    assert_eq!(
        String::from_utf8(inputs.canonical_proof_config.clone()).unwrap(),
        t("proofCanonJCS.txt")
    );
    assert_eq!(atp_core::jcs::to_canonical_string(&config_json).unwrap(), t("proofCanonJCS.txt"));
    assert_eq!(hex::encode(&inputs.document_hash), t("docHashJCS.txt"));
    assert_eq!(hex::encode(&inputs.proof_config_hash), t("proofHashJCS.txt"));
    assert_eq!(hex::encode(&inputs.hash_data), t("combinedHashJCS.txt"));

    // Signature (Ed25519 is deterministic) and its encoding.
    let sig = key.sign(&inputs.hash_data, b"").unwrap();
    assert_eq!(hex::encode(&sig), t("sigHexJCS.txt"));
    assert_eq!(Cryptosuite::EddsaJcs2022.encode_proof_value(&sig), t("sigBTC58JCS.txt"));
    assert_eq!(proof["proofValue"], t("sigBTC58JCS.txt"));

    // The whole signed document.
    let ours = sign_proof(&unsigned, &options, &key).unwrap();
    assert_eq!(ours, signed);
    assert_eq!(serde_json::to_string(&ours).unwrap(), serde_json::to_string(&signed).unwrap());

    // It verifies with the did:key resolver under the interop policy…
    let v = verify_proofs(&signed, &any(), &resolve_did_key).unwrap();
    assert_eq!(v.proofs.len(), 1);
    assert_eq!(v.controller, "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2");
    // …but a single Ed25519 proof does not satisfy the quantum-safe default.
    assert_kind(
        verify_proofs(&signed, &VerifyOptions::default(), &resolve_did_key),
        ProofErrorKind::PolicyNotSatisfied,
    );
    // Tampering with the document or the proof breaks the signature.
    let mut t1 = signed.clone();
    t1["credentialSubject"]["alumniOf"] = json!("The School of Examplez");
    assert_kind(verify_proofs(&t1, &any(), &resolve_did_key), ProofErrorKind::SignatureInvalid);
    let mut t2 = signed.clone();
    t2["proof"]["created"] = json!("2023-02-24T23:36:39Z");
    assert_kind(verify_proofs(&t2, &any(), &resolve_did_key), ProofErrorKind::SignatureInvalid);
    let mut t3 = signed.clone();
    t3["validUntil"] = json!("2099-01-01T00:00:00Z");
    assert_kind(verify_proofs(&t3, &any(), &resolve_did_key), ProofErrorKind::SignatureInvalid);
}

// ------------------------------------------------------------------------------------------
// mldsa44-jcs-2024: the di-quantum-safe vectors
// ------------------------------------------------------------------------------------------

#[test]
fn mldsa44_jcs_2024_vectors() {
    let Some(signed) =
        atp_test_vectors::read_json(&format!("{QS}/mldsa44-jcs-2024/signed-mldsa44-jcs-2024.json"))
    else {
        return;
    };
    let Some(keys) = atp_test_vectors::read_json(&format!("{QS}/inputs/KeysMLDSA.json")) else {
        return;
    };
    let Some(input) = atp_test_vectors::read_json(&format!("{QS}/inputs/employmentAuth.json"))
    else {
        return;
    };
    let Some(general) =
        atp_test_vectors::read_json(&format!("{QS}/inputs/proofOptions-general.json"))
    else {
        return;
    };
    let Some(hashes) =
        atp_test_vectors::read_json(&format!("{QS}/commonAlgs/hashing-combined.json"))
    else {
        return;
    };
    let proof_config_txt =
        text(&format!("{QS}/commonAlgs/proofConfig-mldsa44-jcs-2024.txt")).unwrap();
    let transform_txt = text(&format!("{QS}/commonAlgs/transform-jcs-sha256.txt")).unwrap();

    // The key: did:key:<publicKeyMultibase>, no fragment.
    let k = &keys["mldsa44"];
    let vm = signed["proof"]["verificationMethod"].as_str().unwrap();
    assert_eq!(vm, format!("did:key:{}", k["publicKeyMultibase"].as_str().unwrap()));
    let pk = resolve_did_key(vm).unwrap();
    assert_eq!(pk.algorithm(), AlgorithmId::MlDsa44);
    assert_eq!(hex::encode(pk.as_bytes()), k["publicKeyHex"].as_str().unwrap());
    assert_eq!(pk, PublicKey::from_multikey(k["publicKeyMultibase"].as_str().unwrap()).unwrap());

    // The unsecured document is the input credential.
    let doc = unsecured(&signed);
    assert_eq!(doc, input);

    // Intermediates: the proof configuration (built from the general options too), the
    // transformed document, and hashData = SHA-256(config) || SHA-256(doc).
    let config = proof_configuration(&doc, &signed["proof"]).unwrap();
    let mut from_general = general.clone();
    from_general["cryptosuite"] = json!("mldsa44-jcs-2024");
    from_general["verificationMethod"] = json!(vm);
    assert_eq!(proof_configuration(&doc, &from_general).unwrap(), config);
    let inputs = proof_inputs(Cryptosuite::MlDsa44Jcs2024, &doc, &config).unwrap();
    assert_eq!(String::from_utf8(inputs.canonical_proof_config.clone()).unwrap(), proof_config_txt);
    assert_eq!(String::from_utf8(inputs.canonical_document.clone()).unwrap(), transform_txt);
    assert_eq!(hex::encode(&inputs.hash_data), hashes["mldsa44-jcs-2024"].as_str().unwrap());
    assert_eq!(inputs.hash_data.len(), 64);

    // The proofValue is `u` + base64url of a 2420-byte pure ML-DSA-44 signature, empty ctx.
    let pv = signed["proof"]["proofValue"].as_str().unwrap();
    assert!(pv.starts_with('u'));
    let sig = Cryptosuite::MlDsa44Jcs2024.decode_proof_value(pv).unwrap();
    assert_eq!(sig.len(), 2420);
    pk.verify(&inputs.hash_data, b"", &sig).unwrap();
    assert!(pk.verify(&inputs.hash_data, b"x", &sig).is_err());

    // Whole-document verification.
    let v = verify_proofs(&signed, &any(), &resolve_did_key).unwrap();
    assert_eq!(v.proofs[0].cryptosuite, Cryptosuite::MlDsa44Jcs2024);
    assert_eq!(v.controller, vm);
    // One ML-DSA proof alone is not the quantum-safe proof set.
    assert_kind(
        verify_proofs(&signed, &VerifyOptions::default(), &resolve_did_key),
        ProofErrorKind::PolicyNotSatisfied,
    );
    // Tampering.
    let mut t = signed.clone();
    t["credentialSubject"]["givenName"] = json!("JANE");
    let e = verify_proofs(&t, &any(), &resolve_did_key).unwrap_err();
    assert_eq!(e.code(), "CRYPTOGRAPHIC_SECURITY_ERROR");
    assert_kind(Err::<(), _>(e), ProofErrorKind::SignatureInvalid);
    // Verifying through the structural credential rules too (the vector's issuer is not the
    // proof's controller, so the issuer-bound verifier refuses it).
    assert_kind(
        di::verify_credential(&signed, NOW, &any(), &resolve_did_key),
        ProofErrorKind::ControllerMismatch,
    );
}

#[test]
fn did_key_resolver() {
    let ed = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2";
    let k =
        resolve_did_key(&format!("{ed}#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2")).unwrap();
    assert_eq!(k, resolve_did_key(ed).unwrap());
    assert_kind(resolve_did_key(&format!("{ed}#key-1")), ProofErrorKind::VerificationMethod);
    assert_kind(resolve_did_key("did:web:example.org#key"), ProofErrorKind::VerificationMethod);
    assert_kind(resolve_did_key("did:key:zNotAKey"), ProofErrorKind::VerificationMethod);
}

// ------------------------------------------------------------------------------------------
// Keys and a resolver for the ATP-style tests
// ------------------------------------------------------------------------------------------

struct Party {
    did: String,
    key: SigningKey,
}

impl Party {
    fn new(name: &str, seed_byte: u8) -> Self {
        let seed: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(7) ^ seed_byte).collect();
        Party {
            did: format!("did:atp:{name}"),
            key: SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &seed).unwrap(),
        }
    }
    fn vm_mldsa(&self) -> String {
        format!("{}#mldsa65", self.did)
    }
    fn vm_ed(&self) -> String {
        format!("{}#ed25519", self.did)
    }
    fn components(&self) -> (&SigningKey, &SigningKey) {
        self.key.components().unwrap()
    }
}

fn parties() -> &'static [Party; 2] {
    static P: OnceLock<[Party; 2]> = OnceLock::new();
    P.get_or_init(|| [Party::new("alice", 1), Party::new("bob", 2)])
}

fn resolver(vm: &str) -> Result<PublicKey, CoreError> {
    for p in parties() {
        let (m, e) = p.components();
        if vm == p.vm_mldsa() {
            return Ok(m.public_key());
        }
        if vm == p.vm_ed() {
            return Ok(e.public_key());
        }
    }
    resolve_did_key(vm)
}

/// A single-key (Ed25519) `did:key` controller: its key and its DID, which is also its
/// verification method.
fn did_key_ed25519() -> (SigningKey, String) {
    let key = SigningKey::from_seed(AlgorithmId::Ed25519, &[5u8; 32]).unwrap();
    let did = format!("did:key:{}", key.public_key().to_multikey().unwrap());
    (key, did)
}

fn credential(issuer: &str) -> Value {
    CredentialBuilder::new(issuer)
        .id("urn:uuid:0b7a7a5e-0000-4000-8000-000000000001")
        .add_type("AgentCapabilityCredential")
        .subject(
            json!({"id": "did:atp:agent-7", "capabilities": ["search", "book"], "limit": 250.5}),
        )
        .valid_from("2025-06-01T00:00:00Z")
        .valid_until("2027-06-01T00:00:00Z")
        .build()
        .unwrap()
}

fn qs_signed(p: &Party, doc: &Value) -> Value {
    let opts = ProofSetOptions::assertion(p.vm_mldsa(), p.vm_ed(), CREATED);
    sign_quantum_safe_proof_set(doc, &p.key, &opts).unwrap()
}

fn alice_vc() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| {
        let alice = &parties()[0];
        qs_signed(alice, &credential(&alice.did))
    })
}

// ------------------------------------------------------------------------------------------
// Round trips of every suite
// ------------------------------------------------------------------------------------------

#[test]
fn every_suite_round_trips() {
    for suite in Cryptosuite::ALL {
        let key = SigningKey::from_seed(suite.algorithm(), &[9u8; 32]).unwrap();
        let pk = key.public_key();
        let vm = format!("did:key:{}", pk.to_multikey().unwrap());
        let doc = credential(&vm);
        let signed =
            sign_proof(&doc, &ProofOptions::assertion(suite, vm.clone()).created(CREATED), &key)
                .unwrap();
        let pv = signed["proof"]["proofValue"].as_str().unwrap();
        assert_eq!(pv.starts_with('z'), suite == Cryptosuite::EddsaJcs2022, "{suite}");
        assert_eq!(signed["proof"]["cryptosuite"], suite.name());
        assert_eq!(signed["proof"]["@context"], doc["@context"]);
        let v = di::verify_credential(&signed, NOW, &any(), &resolve_did_key).unwrap();
        assert_eq!(v.proofs.proofs[0].cryptosuite, suite);
        // The hash is SHA-384 for ML-DSA-65 and SHA-256 otherwise.
        let config = proof_configuration(&doc, &signed["proof"]).unwrap();
        let inputs = proof_inputs(suite, &doc, &config).unwrap();
        let want = if suite == Cryptosuite::MlDsa65Jcs2024 { 96 } else { 64 };
        assert_eq!(inputs.hash_data.len(), want, "{suite}");
        // A key of the wrong type cannot sign the suite.
        let other = if suite == Cryptosuite::EddsaJcs2022 {
            AlgorithmId::MlDsa65
        } else {
            AlgorithmId::Ed25519
        };
        let wrong = SigningKey::from_seed(other, &[9u8; 32]).unwrap();
        let e = sign_proof(&doc, &ProofOptions::assertion(suite, vm.clone()), &wrong).unwrap_err();
        assert_eq!(e.code(), "PROOF_GENERATION_ERROR");
    }
}

// ------------------------------------------------------------------------------------------
// Quantum-safe proof sets and the policy
// ------------------------------------------------------------------------------------------

#[test]
fn quantum_safe_proof_set_verifies() {
    let [alice, _] = parties();
    let signed = alice_vc();
    let proofs = signed["proof"].as_array().unwrap();
    assert_eq!(proofs.len(), 2);
    assert_eq!(proofs[0]["cryptosuite"], "mldsa65-jcs-2024");
    assert_eq!(proofs[0]["verificationMethod"], alice.vm_mldsa());
    assert_eq!(proofs[1]["cryptosuite"], "eddsa-jcs-2022");
    assert_eq!(proofs[1]["verificationMethod"], alice.vm_ed());

    let v = verify_proofs(signed, &VerifyOptions::default(), &resolver).unwrap();
    assert_eq!(v.controller, alice.did);
    let v = di::verify_credential(signed, NOW, &VerifyOptions::default(), &resolver).unwrap();
    assert_eq!(v.credential.issuer, alice.did);
    assert_eq!(v.proofs.proofs.len(), 2);

    // Proof set, not chain: each proof verifies on its own over the document without proofs.
    let doc = unsecured(signed);
    assert_eq!(doc, credential(&alice.did));
    for p in proofs {
        verify_proof(&doc, p, &VerifyOptions::default(), &resolver).unwrap();
    }
    // The proof order does not matter.
    let mut swapped = signed.clone();
    swapped["proof"] = json!([proofs[1], proofs[0]]);
    verify_proofs(&swapped, &VerifyOptions::default(), &resolver).unwrap();

    // The validity period still applies.
    let e = di::verify_credential(signed, 1_900_000_000, &VerifyOptions::default(), &resolver)
        .unwrap_err();
    assert_eq!(e.code(), "RANGE_ERROR");
}

#[test]
fn one_proof_alone_fails_quantum_safe_policy() {
    let signed = alice_vc();
    for keep in 0..2 {
        let mut one = signed.clone();
        let p = signed["proof"][keep].clone();
        one["proof"] = p;
        assert_kind(
            verify_proofs(&one, &VerifyOptions::default(), &resolver),
            ProofErrorKind::PolicyNotSatisfied,
        );
        assert_kind(
            di::verify_credential(&one, NOW, &VerifyOptions::default(), &resolver),
            ProofErrorKind::PolicyNotSatisfied,
        );
        // Nor does the interop policy: a did:atp key is composite, so either proof alone is a
        // downgrade, refused under every policy.
        assert_kind(verify_proofs(&one, &any(), &resolver), ProofErrorKind::PolicyNotSatisfied);
        assert_kind(
            di::verify_credential(&one, NOW, &any(), &resolver),
            ProofErrorKind::PolicyNotSatisfied,
        );
    }
    // The interop policy does accept one proof by a single-key controller (did:key).
    let (ed, did_key) = did_key_ed25519();
    let lone = sign_proof(
        &credential(&did_key),
        &ProofOptions::assertion(Cryptosuite::EddsaJcs2022, did_key.clone()).created(CREATED),
        &ed,
    )
    .unwrap();
    assert_kind(
        verify_proofs(&lone, &VerifyOptions::default(), &resolve_did_key),
        ProofErrorKind::PolicyNotSatisfied,
    );
    assert_eq!(verify_proofs(&lone, &any(), &resolve_did_key).unwrap().controller, did_key);
    // Two proofs of the same kind are not enough either.
    let (m, _) = parties()[0].components();
    let doc = unsecured(signed);
    let opts = ProofOptions::assertion(Cryptosuite::MlDsa65Jcs2024, parties()[0].vm_mldsa())
        .created(CREATED);
    let twice = sign_proof(&sign_proof(&doc, &opts, m).unwrap(), &opts, m).unwrap();
    assert_eq!(twice["proof"].as_array().unwrap().len(), 2);
    assert_kind(
        verify_proofs(&twice, &VerifyOptions::default(), &resolver),
        ProofErrorKind::PolicyNotSatisfied,
    );
}

#[test]
fn proofs_from_two_controllers_fail_quantum_safe_policy() {
    let [alice, bob] = parties();
    let doc = credential(&alice.did);
    let (alice_m, _) = alice.components();
    let (_, bob_e) = bob.components();
    let mixed = sign_proof(
        &sign_proof(
            &doc,
            &ProofOptions::assertion(Cryptosuite::MlDsa65Jcs2024, alice.vm_mldsa())
                .created(CREATED),
            alice_m,
        )
        .unwrap(),
        &ProofOptions::assertion(Cryptosuite::EddsaJcs2022, bob.vm_ed()).created(CREATED),
        bob_e,
    )
    .unwrap();
    // Both proofs are valid, but they are not one controller's pair: refused under either
    // policy (each is one component of a composite did:atp key).
    for opts in [VerifyOptions::default(), any()] {
        assert_kind(verify_proofs(&mixed, &opts, &resolver), ProofErrorKind::PolicyNotSatisfied);
    }
    // A proof set by Bob on a credential that names Alice as issuer.
    let bobs = qs_signed(bob, &doc);
    verify_proofs(&bobs, &VerifyOptions::default(), &resolver).unwrap();
    assert_kind(
        di::verify_credential(&bobs, NOW, &VerifyOptions::default(), &resolver),
        ProofErrorKind::ControllerMismatch,
    );
    // Signing a proof set with two controllers is refused.
    let bad = ProofSetOptions::assertion(alice.vm_mldsa(), bob.vm_ed(), CREATED);
    let e = sign_quantum_safe_proof_set(&doc, &alice.key, &bad).unwrap_err();
    assert_eq!(e.code(), "PROOF_GENERATION_ERROR");
    // And only a composite key can make one.
    let (m, _) = alice.components();
    let e = sign_quantum_safe_proof_set(
        &doc,
        m,
        &ProofSetOptions::assertion(alice.vm_mldsa(), alice.vm_ed(), CREATED),
    )
    .unwrap_err();
    assert_eq!(e.code(), "PROOF_GENERATION_ERROR");
}

#[test]
fn any_invalid_proof_rejects_the_document() {
    let signed = alice_vc();
    let bob = &parties()[1];
    // A valid pair plus one broken third proof.
    let (_, bob_e) = bob.components();
    let mut three = sign_proof(
        signed,
        &ProofOptions::assertion(Cryptosuite::EddsaJcs2022, bob.vm_ed()).created(CREATED),
        bob_e,
    )
    .unwrap();
    verify_proofs(&three, &VerifyOptions::default(), &resolver).unwrap();
    three["proof"][2]["created"] = json!("2026-01-01T00:00:01Z");
    for opts in [VerifyOptions::default(), any()] {
        assert_kind(verify_proofs(&three, &opts, &resolver), ProofErrorKind::SignatureInvalid);
    }
    // An unknown cryptosuite is not skipped.
    let mut unknown = signed.clone();
    let mut extra = signed["proof"][1].clone();
    extra["cryptosuite"] = json!("ecdsa-jcs-2019");
    unknown["proof"].as_array_mut().unwrap().push(extra);
    assert_kind(
        verify_proofs(&unknown, &VerifyOptions::default(), &resolver),
        ProofErrorKind::UnsupportedCryptosuite,
    );
}

/// Regression: JCS writes numbers as doubles, so `9007199254740993` used to canonicalise like
/// `9007199254740992`: a proof over one value verified over the other, while the relying
/// party read the exact (tampered) integer. Such documents are now refused before hashing.
#[test]
fn integers_that_jcs_would_round_cannot_be_swapped() {
    let [alice, _] = parties();
    let doc = CredentialBuilder::new(&alice.did)
        .subject(json!({"id": "did:atp:agent-7", "accountId": 9_007_199_254_740_992u64}))
        .build()
        .unwrap();
    let signed = qs_signed(alice, &doc);
    di::verify_credential(&signed, NOW, &VerifyOptions::default(), &resolver).unwrap();
    let mut swapped = signed.clone();
    swapped["credentialSubject"]["accountId"] = json!(9_007_199_254_740_993u64);
    let e = di::verify_credential(&swapped, NOW, &VerifyOptions::default(), &resolver);
    assert_eq!(e.unwrap_err().code(), "PARSING_ERROR");
    // Nor can such a document be signed.
    let opts = ProofOptions::assertion(Cryptosuite::EddsaJcs2022, alice.vm_ed()).created(CREATED);
    let (_, e) = alice.components();
    assert_eq!(sign_proof(&unsecured(&swapped), &opts, e).unwrap_err().code(), "PARSING_ERROR");
}

/// Regression: `verify_proof` is public, and with purpose `authentication` but no expected
/// challenge (or domain) it accepted a presentation proof binding any challenge, so a captured
/// presentation could be replayed. Only `verify_proofs` used to insist on them.
#[test]
fn verify_proof_insists_on_the_expected_challenge_and_domain() {
    let [_, bob] = parties();
    let vp = PresentationBuilder::new().holder(&bob.did).build().unwrap();
    let (_, bob_e) = bob.components();
    let opts = ProofOptions::authentication(Cryptosuite::EddsaJcs2022, bob.vm_ed(), "c-1", "d.ex")
        .created(CREATED);
    let signed = sign_proof(&vp, &opts, bob_e).unwrap();
    let proof = &signed["proof"];
    let expect = VerifyOptions::authentication("c-1", "d.ex").with_policy(ProofPolicy::Any);
    verify_proof(&vp, proof, &expect, &resolver).unwrap();
    let mut no_c = expect.clone();
    no_c.challenge = None;
    assert_kind(verify_proof(&vp, proof, &no_c, &resolver), ProofErrorKind::InvalidChallenge);
    let mut no_d = expect.clone();
    no_d.domain = None;
    assert_kind(verify_proof(&vp, proof, &no_d, &resolver), ProofErrorKind::InvalidDomain);
}

#[test]
fn tampering_gives_cryptographic_security_error() {
    let signed = alice_vc();
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, ProofErrorKind)> = vec![
        (
            "subject claim",
            |d: &mut Value| d["credentialSubject"]["limit"] = json!(250.6),
            ProofErrorKind::SignatureInvalid,
        ),
        (
            "capability added",
            |d: &mut Value| {
                d["credentialSubject"]["capabilities"].as_array_mut().unwrap().push(json!("pay"))
            },
            ProofErrorKind::SignatureInvalid,
        ),
        (
            "type",
            |d: &mut Value| d["type"] = json!(["VerifiableCredential"]),
            ProofErrorKind::SignatureInvalid,
        ),
        ("new property", |d: &mut Value| d["extra"] = json!(1), ProofErrorKind::SignatureInvalid),
        (
            "validUntil",
            |d: &mut Value| d["validUntil"] = json!("2099-06-01T00:00:00Z"),
            ProofErrorKind::SignatureInvalid,
        ),
        (
            "credential id",
            |d: &mut Value| d["id"] = json!("urn:uuid:other"),
            ProofErrorKind::SignatureInvalid,
        ),
        (
            "proof created",
            |d: &mut Value| d["proof"][0]["created"] = json!("2026-01-02T00:00:00Z"),
            ProofErrorKind::SignatureInvalid,
        ),
        (
            "proof nonce added",
            |d: &mut Value| d["proof"][1]["nonce"] = json!("x"),
            ProofErrorKind::SignatureInvalid,
        ),
        (
            "proof VM swapped",
            |d: &mut Value| {
                d["proof"][1]["verificationMethod"] = json!("did:atp:bob#ed25519");
            },
            ProofErrorKind::SignatureInvalid,
        ),
        (
            "proof purpose",
            |d: &mut Value| d["proof"][0]["proofPurpose"] = json!("authentication"),
            ProofErrorKind::ProofPurposeMismatch,
        ),
        (
            "proof @context",
            |d: &mut Value| {
                d["proof"][1]["@context"] =
                    json!(["https://www.w3.org/ns/credentials/v2", "https://example.org/x"])
            },
            ProofErrorKind::ContextMismatch,
        ),
        (
            "document @context appended",
            |d: &mut Value| {
                d["@context"].as_array_mut().unwrap().push(json!("https://example.org/x"))
            },
            ProofErrorKind::ContextMismatch,
        ),
        (
            "suite renamed",
            |d: &mut Value| d["proof"][0]["cryptosuite"] = json!("mldsa44-jcs-2024"),
            ProofErrorKind::MalformedProof,
        ),
        (
            "proof type",
            |d: &mut Value| d["proof"][0]["type"] = json!("Ed25519Signature2020"),
            ProofErrorKind::MalformedProof,
        ),
        (
            "proofValue removed",
            |d: &mut Value| drop(d["proof"][1].as_object_mut().unwrap().remove("proofValue")),
            ProofErrorKind::MalformedProof,
        ),
        (
            "proofValue re-encoded",
            |d: &mut Value| {
                let pv = d["proof"][1]["proofValue"].as_str().unwrap().to_owned();
                let (_, bytes) = multibase::decode(&pv).unwrap();
                d["proof"][1]["proofValue"] =
                    json!(multibase::encode(multibase::Base::Base64Url, bytes));
            },
            ProofErrorKind::MalformedProof,
        ),
        (
            "VM wrong key type",
            |d: &mut Value| d["proof"][1]["verificationMethod"] = json!("did:atp:alice#mldsa65"),
            ProofErrorKind::VerificationMethod,
        ),
        (
            "previousProof",
            |d: &mut Value| d["proof"][1]["previousProof"] = json!("urn:x"),
            ProofErrorKind::ProofChainUnsupported,
        ),
        (
            "proof removed",
            |d: &mut Value| drop(d.as_object_mut().unwrap().remove("proof")),
            ProofErrorKind::MissingProof,
        ),
        (
            "proof not an object",
            |d: &mut Value| d["proof"] = json!(["x"]),
            ProofErrorKind::MalformedProof,
        ),
    ];
    for (name, edit, kind) in cases {
        let mut d = signed.clone();
        edit(&mut d);
        let e = verify_proofs(&d, &VerifyOptions::default(), &resolver).unwrap_err();
        assert_eq!(e.code(), "CRYPTOGRAPHIC_SECURITY_ERROR", "{name}: {e}");
        match e {
            CoreError::VcCryptographicSecurity { kind: k, .. } => assert_eq!(k, kind, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn expiring_proofs() {
    // One proof alone verifies only for a single-key controller, so the key is a did:key.
    let (e, did_key) = did_key_ed25519();
    let doc = credential(&did_key);
    let opts = ProofOptions::assertion(Cryptosuite::EddsaJcs2022, did_key.clone())
        .created(CREATED)
        .expires("2026-01-01T01:00:00Z");
    let signed = sign_proof(&doc, &opts, &e).unwrap();
    verify_proofs(&signed, &any().at(NOW + 3600), &resolve_did_key).unwrap();
    assert_kind(
        verify_proofs(&signed, &any().at(NOW + 3601), &resolve_did_key),
        ProofErrorKind::ProofExpired,
    );
    assert_kind(
        di::verify_credential(&signed, NOW + 3601, &any(), &resolve_did_key),
        ProofErrorKind::ProofExpired,
    );
    let bad = ProofOptions::assertion(Cryptosuite::EddsaJcs2022, did_key).created("yesterday");
    assert_eq!(sign_proof(&doc, &bad, &e).unwrap_err().code(), "PROOF_GENERATION_ERROR");
}

// ------------------------------------------------------------------------------------------
// Presentations: challenge, domain, replay
// ------------------------------------------------------------------------------------------

#[test]
fn presentations_bind_challenge_and_domain() {
    let [alice, bob] = parties();
    let vp =
        PresentationBuilder::new().holder(&bob.did).credential(alice_vc().clone()).build().unwrap();
    let opts = ProofSetOptions::authentication(
        bob.vm_mldsa(),
        bob.vm_ed(),
        CREATED,
        "c-8f1d",
        "verifier.example",
    );
    let signed = sign_quantum_safe_proof_set(&vp, &bob.key, &opts).unwrap();

    let expect = VerifyOptions::authentication("c-8f1d", "verifier.example");
    let v = di::verify_presentation(&signed, NOW, &expect, &resolver).unwrap();
    assert_eq!(v.proofs.controller, bob.did);
    assert_eq!(v.proofs.challenge(), Some("c-8f1d"));
    assert_eq!(v.credentials.len(), 1);
    assert_eq!(v.credentials[0].credential.issuer, alice.did);

    // The caller's replay cache: a challenge is consumed once.
    let mut seen = HashSet::new();
    assert!(seen.insert(v.proofs.challenge().unwrap().to_owned()));
    let again = di::verify_presentation(&signed, NOW, &expect, &resolver).unwrap();
    assert!(!seen.insert(again.proofs.challenge().unwrap().to_owned()), "replay must be detected");

    let wrong_c = VerifyOptions::authentication("c-other", "verifier.example");
    assert_kind(
        di::verify_presentation(&signed, NOW, &wrong_c, &resolver),
        ProofErrorKind::InvalidChallenge,
    );
    let wrong_d = VerifyOptions::authentication("c-8f1d", "evil.example");
    assert_kind(
        di::verify_presentation(&signed, NOW, &wrong_d, &resolver),
        ProofErrorKind::InvalidDomain,
    );
    // The verifier must say what it expects.
    let mut no_c = expect.clone();
    no_c.challenge = None;
    assert_kind(verify_proofs(&signed, &no_c, &resolver), ProofErrorKind::InvalidChallenge);
    let mut no_d = expect.clone();
    no_d.domain = None;
    assert_kind(verify_proofs(&signed, &no_d, &resolver), ProofErrorKind::InvalidDomain);
    // An assertion proof is not an authentication proof.
    assert_kind(
        di::verify_presentation(&qs_signed(bob, &vp), NOW, &expect, &resolver),
        ProofErrorKind::ProofPurposeMismatch,
    );
    // A presentation proof without a challenge is refused even if the signature is good.
    let (_, bob_e) = bob.components();
    let mut o = ProofOptions::authentication(Cryptosuite::EddsaJcs2022, bob.vm_ed(), "c", "d");
    o.challenge = None;
    assert_eq!(sign_proof(&vp, &o, bob_e).unwrap_err().code(), "PROOF_GENERATION_ERROR");
    // Changing the challenge in the proof breaks the signature.
    let mut t = signed.clone();
    t["proof"][0]["challenge"] = json!("c-other");
    assert_kind(
        di::verify_presentation(&t, NOW, &wrong_c, &resolver),
        ProofErrorKind::SignatureInvalid,
    );
    // Signed by Alice but naming Bob as holder.
    let by_alice = sign_quantum_safe_proof_set(
        &vp,
        &alice.key,
        &ProofSetOptions::authentication(
            alice.vm_mldsa(),
            alice.vm_ed(),
            CREATED,
            "c-8f1d",
            "verifier.example",
        ),
    )
    .unwrap();
    assert_kind(
        di::verify_presentation(&by_alice, NOW, &expect, &resolver),
        ProofErrorKind::ControllerMismatch,
    );
    // A tampered embedded credential fails the presentation (both proofs cover it).
    let mut t = signed.clone();
    t["verifiableCredential"][0]["credentialSubject"]["limit"] = json!(9999);
    assert_kind(
        di::verify_presentation(&t, NOW, &expect, &resolver),
        ProofErrorKind::SignatureInvalid,
    );
}

// ------------------------------------------------------------------------------------------
// Limits
// ------------------------------------------------------------------------------------------

#[test]
fn limits() {
    let [alice, _] = parties();
    let (_, e) = alice.components();
    let opts = ProofOptions::assertion(Cryptosuite::EddsaJcs2022, alice.vm_ed()).created(CREATED);
    // Size.
    let big = CredentialBuilder::new(&alice.did)
        .subject(json!({"blob": "x".repeat(MAX_DOCUMENT_BYTES)}))
        .build()
        .unwrap();
    assert_eq!(sign_proof(&big, &opts, e).unwrap_err().code(), "PARSING_ERROR");
    assert_eq!(verify_proofs(&big, &any(), &resolver).unwrap_err().code(), "PARSING_ERROR");
    // Depth.
    let mut deep = json!("leaf");
    for _ in 0..MAX_DOCUMENT_DEPTH {
        deep = json!({ "n": deep });
    }
    let deep_vc = CredentialBuilder::new(&alice.did).subject(deep).build().unwrap();
    assert_eq!(sign_proof(&deep_vc, &opts, e).unwrap_err().code(), "PARSING_ERROR");
    assert_eq!(verify_proofs(&deep_vc, &any(), &resolver).unwrap_err().code(), "PARSING_ERROR");
    // Proof count (by a single-key controller, for which one kind of proof suffices).
    let (single, did_key) = did_key_ed25519();
    let single_opts =
        ProofOptions::assertion(Cryptosuite::EddsaJcs2022, did_key.clone()).created(CREATED);
    let mut doc = credential(&did_key);
    for _ in 0..MAX_PROOFS {
        doc = sign_proof(&doc, &single_opts, &single).unwrap();
    }
    verify_proofs(&doc, &any(), &resolve_did_key).unwrap();
    assert_eq!(
        sign_proof(&doc, &single_opts, &single).unwrap_err().code(),
        "PROOF_GENERATION_ERROR"
    );
    let mut too_many = doc.clone();
    let first = doc["proof"][0].clone();
    too_many["proof"].as_array_mut().unwrap().push(first);
    assert_kind(verify_proofs(&too_many, &any(), &resolve_did_key), ProofErrorKind::TooManyProofs);
    // Not an object.
    assert_eq!(verify_proofs(&json!([1]), &any(), &resolver).unwrap_err().code(), "PARSING_ERROR");
    // A huge proofValue is refused before decoding.
    let mut huge = alice_vc().clone();
    huge["proof"][1]["proofValue"] = json!(format!("z{}", "2".repeat(10_000)));
    assert_kind(
        verify_proofs(&huge, &VerifyOptions::default(), &resolver),
        ProofErrorKind::MalformedProof,
    );
}

#[path = "data_integrity/separation.rs"]
mod separation;
