//! `did:key`: the W3C CCG Ed25519 vectors, ML-DSA `did:key:u…` keys from the W3C quantum-safe
//! Data Integrity vectors, and strict rejection of malformed identifiers.
#![allow(clippy::unwrap_used)]

use atp_core::CoreError;
use atp_core::did_key::{
    did_key_from_public_key, parse_did_key, resolve_did_key, resolve_did_key_result,
};
use atp_crypto::{AlgorithmId, PublicKey, SigningKey};
use serde_json::json;

fn code(r: Result<impl std::fmt::Debug, CoreError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

/// The raw key of an old-style verification method: `publicKeyBase58` or an OKP
/// `publicKeyJwk` (`JsonWebKey2020`).
fn key_material(vm: &serde_json::Value) -> Vec<u8> {
    if let Some(b58) = vm["publicKeyBase58"].as_str() {
        return base58(b58);
    }
    let jwk = &vm["publicKeyJwk"];
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap()
}

fn base58(s: &str) -> Vec<u8> {
    let (base, bytes) = multibase::decode(format!("z{s}")).unwrap();
    assert_eq!(base, multibase::Base::Base58Btc);
    bytes
}

#[test]
fn ed25519_vectors() {
    let Some(v) = atp_test_vectors::read_json("did-key/test-vectors/ed25519-x25519.json") else {
        return;
    };
    let entries = v.as_object().unwrap();
    assert_eq!(entries.len(), 5);
    for (did, entry) in entries {
        // Seed → key → DID.
        let seed = hex::decode(entry["seed"].as_str().unwrap()).unwrap();
        let sk = SigningKey::from_seed(AlgorithmId::Ed25519, &seed).unwrap();
        assert_eq!(&did_key_from_public_key(sk.public_key_ref()).unwrap(), did);

        // The DID → key, compared with the vector's key material.
        let expected = key_material(&entry["verificationKeyPair"]);
        let pk = parse_did_key(did).unwrap();
        assert_eq!(pk.algorithm(), AlgorithmId::Ed25519);
        assert_eq!(pk.as_bytes(), &expected[..]);

        // The resolved document: same method id, controller and relationships as the vector
        // (which uses the old Ed25519VerificationKey2018 type; ATP uses Multikey).
        let doc = resolve_did_key(did).unwrap();
        let vdoc = &entry["didDocument"];
        assert_eq!(doc.id, vdoc["id"].as_str().unwrap());
        let vvm = &vdoc["verificationMethod"][0];
        assert_eq!(doc.verification_method.len(), 1);
        let vm = &doc.verification_method[0];
        assert_eq!(vm.id, vvm["id"].as_str().unwrap());
        assert_eq!(vm.controller, vvm["controller"].as_str().unwrap());
        assert_eq!(vm.method_type, "Multikey");
        let vm_key = PublicKey::from_multikey(&vm.public_key_multibase).unwrap();
        assert_eq!(vm_key.as_bytes(), &key_material(vvm)[..]);
        for rel in
            ["authentication", "assertionMethod", "capabilityInvocation", "capabilityDelegation"]
        {
            let got = serde_json::to_value(&doc).unwrap()[rel].clone();
            assert_eq!(got, vdoc[rel], "{rel}");
        }
        // The verification method id resolves to the same key.
        assert_eq!(parse_did_key(&vm.id).unwrap(), pk);
    }
}

#[test]
fn ed25519_document_shape() {
    let did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
    let vm = format!("{did}#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp");
    let r = serde_json::to_value(resolve_did_key_result(did).unwrap()).unwrap();
    assert_eq!(
        r["didDocument"],
        json!({
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
            "id": did,
            "verificationMethod": [{
                "id": vm, "type": "Multikey", "controller": did,
                "publicKeyMultibase": "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
            }],
            "authentication": [vm], "assertionMethod": [vm],
            "capabilityInvocation": [vm], "capabilityDelegation": [vm],
        })
    );
    assert_eq!(r["didDocumentMetadata"], json!({"deactivated": false}));
}

#[test]
fn mldsa_did_key_from_quantum_safe_vectors() {
    let Some(keys) =
        atp_test_vectors::read_json("di-quantum-safe/testVectors/inputs/KeysMLDSA.json")
    else {
        return;
    };
    let k = &keys["mldsa44"];
    let mk = k["publicKeyMultibase"].as_str().unwrap();
    assert!(mk.starts_with("ukCR"));
    let did = format!("did:key:{mk}");
    let pk = parse_did_key(&did).unwrap();
    assert_eq!(pk.algorithm(), AlgorithmId::MlDsa44);
    assert_eq!(hex::encode(pk.as_bytes()), k["publicKeyHex"].as_str().unwrap());
    assert_eq!(did_key_from_public_key(&pk).unwrap(), did);
    // The signed credential names the key by its bare did:key.
    let signed = atp_test_vectors::read_json(
        "di-quantum-safe/testVectors/mldsa44-jcs-2024/signed-mldsa44-jcs-2024.json",
    )
    .unwrap();
    let vm = signed["proof"]["verificationMethod"].as_str().unwrap();
    assert_eq!(parse_did_key(vm).unwrap(), pk);
    // And the DID URL form.
    assert_eq!(parse_did_key(&format!("{did}#{mk}")).unwrap(), pk);
    let doc = resolve_did_key(&did).unwrap();
    assert_eq!(doc.verification_method[0].public_key_multibase, mk);
}

#[test]
fn mldsa_round_trips() {
    for alg in [AlgorithmId::MlDsa44, AlgorithmId::MlDsa65, AlgorithmId::MlDsa87] {
        let pk = SigningKey::from_seed(alg, &[9; 32]).unwrap().public_key();
        let did = did_key_from_public_key(&pk).unwrap();
        assert!(did.starts_with("did:key:u"));
        assert_eq!(parse_did_key(&did).unwrap(), pk);
        resolve_did_key(&did).unwrap();
    }
    // Composite keys have no multicodec, so no did:key.
    let c = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[9; 64]).unwrap();
    assert!(did_key_from_public_key(c.public_key_ref()).is_err());
}

#[test]
fn malformed_did_keys_are_rejected() {
    let good = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
    parse_did_key(good).unwrap();
    let invalid = [
        "",
        "did:key:",
        "did:key",
        "key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        "DID:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        // Bad multibase: unknown base, characters outside base58btc.
        "did:key:x6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooW0",
        // Trailing garbage.
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWpa",
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp/path",
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp?q=1",
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp ",
        // Truncated key.
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooW",
        // Fragment that is not the key.
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#key-1",
    ];
    for did in invalid {
        assert_eq!(code(parse_did_key(did)), "DID_INVALID", "{did:?}");
    }
    assert_eq!(code(parse_did_key("did:web:example.com")), "DID_METHOD_NOT_SUPPORTED");
    assert_eq!(code(parse_did_key("did:KEY:z6Mk")), "DID_INVALID");
    // An Ed25519 key in base64url, and an ML-DSA key in base58btc: wrong multibase.
    let pk = parse_did_key(good).unwrap();
    let mut data = vec![0xed, 0x01];
    data.extend_from_slice(pk.as_bytes());
    let u = multibase::encode(multibase::Base::Base64Url, &data);
    assert_eq!(code(parse_did_key(&format!("did:key:{u}"))), "DID_INVALID");
    let ml = SigningKey::from_seed(AlgorithmId::MlDsa44, &[1; 32]).unwrap().public_key();
    let mut data = vec![0x90, 0x24];
    data.extend_from_slice(ml.as_bytes());
    let z = multibase::encode(multibase::Base::Base58Btc, &data);
    assert_eq!(code(parse_did_key(&format!("did:key:{z}"))), "DID_INVALID");
    // Wrong codecs: X25519 (key agreement), secp256k1, and a made-up code.
    assert_eq!(
        code(parse_did_key("did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW")),
        "DID_KEY_UNSUPPORTED_KEY_TYPE"
    );
    assert_eq!(
        code(parse_did_key("did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme")),
        "DID_KEY_UNSUPPORTED_KEY_TYPE"
    );
    let slh = multibase::encode(multibase::Base::Base64Url, [&[0xa0, 0x24][..], &[7; 32]].concat());
    assert_eq!(code(parse_did_key(&format!("did:key:{slh}"))), "DID_KEY_UNSUPPORTED_KEY_TYPE");
    // A code that is not a public key type at all is simply invalid.
    let mut data = vec![0x01];
    data.extend_from_slice(&[7; 32]);
    let z = multibase::encode(multibase::Base::Base58Btc, &data);
    assert_eq!(code(parse_did_key(&format!("did:key:{z}"))), "DID_INVALID");
    // Resolution takes a DID, not a DID URL; and a length cap applies.
    assert_eq!(
        code(resolve_did_key(&format!("{good}#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"))),
        "DID_INVALID"
    );
    assert_eq!(code(parse_did_key(&format!("did:key:u{}", "A".repeat(20_000)))), "DID_INVALID");
}
