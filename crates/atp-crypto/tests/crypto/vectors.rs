//! Known-answer tests from `../shared/vectors`: the LAMPS composite draft, NIST ACVP ML-DSA-65
//! key generation, and the multicodec table.
#![allow(clippy::unwrap_used)]

use atp_crypto::{AlgorithmId, CryptoError, PublicKey, SigningKey, multikey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fips204::traits::{KeyGen, SerDes};
use serde_json::Value;

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap()).unwrap()
}

/// Every ML-DSA-(+Ed25519) algorithm in the draft's vectors that ATP implements, each checked
/// for key derivation from the private seed, and both signatures (with and without context).
#[test]
fn lamps_composite_draft_vectors() {
    let Some(doc) = atp_test_vectors::read_json("composite-mldsa/testvectors.json") else {
        return;
    };
    let m = b64(&doc["m"]);
    let ctx = b64(&doc["ctx"]);
    let wanted = [
        ("id-ML-DSA-44", AlgorithmId::MlDsa44),
        ("id-ML-DSA-65", AlgorithmId::MlDsa65),
        ("id-ML-DSA-87", AlgorithmId::MlDsa87),
        ("id-MLDSA44-Ed25519-SHA512", AlgorithmId::MlDsa44Ed25519),
        ("id-MLDSA65-Ed25519-SHA512", AlgorithmId::MlDsa65Ed25519),
    ];
    let mut checked = 0;
    for test in doc["tests"].as_array().unwrap() {
        let id = test["tcId"].as_str().unwrap();
        let Some((_, alg)) = wanted.iter().find(|(name, _)| *name == id) else {
            continue;
        };
        let pk_bytes = b64(&test["pk"]);
        let pk = PublicKey::from_bytes(*alg, &pk_bytes).unwrap();
        pk.verify(&m, &[], &b64(&test["s"])).unwrap_or_else(|e| panic!("{id} s: {e}"));
        pk.verify(&m, &ctx, &b64(&test["sWithContext"]))
            .unwrap_or_else(|e| panic!("{id} sWithContext: {e}"));
        // The signature made without context must not verify with it, and vice versa.
        assert!(pk.verify(&m, &ctx, &b64(&test["s"])).is_err(), "{id}: ctx not bound");
        assert!(pk.verify(&m, &[], &b64(&test["sWithContext"])).is_err(), "{id}: ctx not bound");
        // The draft's private key is the seed (ML-DSA seed || Ed25519 seed for composites).
        let sk = SigningKey::from_seed(*alg, &b64(&test["sk"])).unwrap();
        assert_eq!(sk.public_key().as_bytes(), pk_bytes.as_slice(), "{id}: seed → public key");
        let ours = sk.sign(&m, &ctx).unwrap();
        pk.verify(&m, &ctx, &ours).unwrap();
        checked += 1;
    }
    assert_eq!(checked, wanted.len(), "every wanted algorithm is present in the vectors");
}

/// NIST ACVP ML-DSA-65 keyGen: the seed expands to exactly the expected public and secret keys,
/// and our key derivation gives the same public key.
#[test]
fn acvp_mldsa65_keygen() {
    let Some(doc) = atp_test_vectors::read_json("ml-dsa-acvp/ML-DSA-65-keyGen.json") else {
        return;
    };
    let mut n = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        assert_eq!(group["parameterSet"], "ML-DSA-65");
        for t in group["tests"].as_array().unwrap() {
            let seed: [u8; 32] =
                hex::decode(t["seed"].as_str().unwrap()).unwrap().try_into().unwrap();
            let pk = hex::decode(t["pk"].as_str().unwrap()).unwrap();
            let sk = hex::decode(t["sk"].as_str().unwrap()).unwrap();
            let (fpk, fsk) = fips204::ml_dsa_65::KG::keygen_from_seed(&seed);
            assert_eq!(fpk.into_bytes().as_slice(), pk.as_slice());
            assert_eq!(fsk.into_bytes().as_slice(), sk.as_slice());
            let ours = SigningKey::from_seed(AlgorithmId::MlDsa65, &seed).unwrap();
            assert_eq!(ours.public_key().as_bytes(), pk.as_slice());
            n += 1;
        }
    }
    assert_eq!(n, 25);
}

/// Our multicodec constants and multibase choices agree with the multicodec table excerpt.
#[test]
fn multicodec_table() {
    let Some(csv) = atp_test_vectors::read_text("multicodec/table-excerpt.csv") else {
        return;
    };
    let code_of = |name: &str| -> u16 {
        let line = csv
            .lines()
            .find(|l| l.split(',').next().map(str::trim) == Some(name))
            .unwrap_or_else(|| panic!("{name} not in table"));
        let code = line.split(',').nth(2).unwrap().trim().trim_start_matches("0x");
        u16::from_str_radix(code, 16).unwrap()
    };
    assert_eq!(code_of("ed25519-pub"), multikey::ED25519_PUB);
    assert_eq!(code_of("mldsa-44-pub"), multikey::MLDSA44_PUB);
    assert_eq!(code_of("mldsa-65-pub"), multikey::MLDSA65_PUB);
    assert_eq!(code_of("mldsa-87-pub"), multikey::MLDSA87_PUB);

    let Some(prefixes) = atp_test_vectors::read_text("multicodec/prefixes.md") else {
        return;
    };
    for (alg, lead, len) in [
        (AlgorithmId::Ed25519, "z6Mk", 48),
        (AlgorithmId::MlDsa44, "ukC", 1753),
        (AlgorithmId::MlDsa65, "ukS", 2607),
        (AlgorithmId::MlDsa87, "uki", 3460),
    ] {
        let key = SigningKey::from_seed(alg, &[7u8; 32]).unwrap().public_key();
        let mk = key.to_multikey().unwrap();
        assert!(mk.starts_with(lead), "{alg}: {mk:.8}");
        assert_eq!(mk.len(), len, "{alg}");
        assert!(prefixes.contains(&format!("`{lead}")), "{lead} documented in prefixes.md");
        assert_eq!(PublicKey::from_multikey(&mk).unwrap(), key);
    }
}

/// The spec key pair of vc-di-eddsa: the `z3u2…` secret (0x8026 + seed) gives `z6Mkr…`.
#[test]
fn vc_di_eddsa_key_pair() {
    let Some(kp) = atp_test_vectors::read_json("vc-di-eddsa/TestVectors/keyPair.json") else {
        return;
    };
    let (_, secret) = multibase::decode(kp["privateKeyMultibase"].as_str().unwrap()).unwrap();
    assert_eq!(&secret[..2], &[0x80, 0x26]);
    let key = SigningKey::from_seed(AlgorithmId::Ed25519, &secret[2..]).unwrap();
    assert_eq!(key.public_key().to_multikey().unwrap(), kp["publicKeyMultibase"].as_str().unwrap());
}

#[test]
fn multikey_rejects_wrong_base_and_garbage() {
    let key = SigningKey::from_seed(AlgorithmId::Ed25519, &[1u8; 32]).unwrap().public_key();
    let mk = key.to_multikey().unwrap();
    // Same bytes in base64url: Ed25519 Multikeys must be base58btc.
    let (_, raw) = multibase::decode(&mk).unwrap();
    let wrong = multibase::encode(multibase::Base::Base64Url, &raw);
    assert!(matches!(PublicKey::from_multikey(&wrong), Err(CryptoError::Multikey(_))));
    let mut trailing = raw.clone();
    trailing.push(0);
    let trailing = multibase::encode(multibase::Base::Base58Btc, &trailing);
    assert!(PublicKey::from_multikey(&trailing).is_err());
    assert!(PublicKey::from_multikey("").is_err());
    assert!(PublicKey::from_multikey("z").is_err());
    assert!(PublicKey::from_multikey("x6Mk").is_err());
    // Unknown codec (x25519-pub 0xec).
    let mut x = vec![0xec, 0x01];
    x.extend_from_slice(&[9u8; 32]);
    assert!(PublicKey::from_multikey(&multibase::encode(multibase::Base::Base58Btc, &x)).is_err());
}
