//! Every case of the Wycheproof Ed25519 and ML-DSA-65 verification vectors
//! (`../shared/vectors/wycheproof`), through the public `PublicKey::verify` that every caller of
//! ATP uses. A disagreement names the case, its comment and its flags (the bug class).
//!
//! "acceptable" results (a signature the standard lets a verifier take or refuse): ATP refuses
//! them, so that its verdict is never looser than that of any conforming verifier. The current
//! files have none; the count is printed so that a new file with some is noticed.
#![allow(clippy::unwrap_used)]

use atp_crypto::{AlgorithmId, PublicKey};
use serde_json::Value;

fn hex_field(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or("")).unwrap()
}

/// Run every test of a Wycheproof file: `public_key` reads a group's key bytes, and the verdict
/// is ATP's: a key it cannot load, a bad length or a refused signature all count as "refuse".
fn run(
    file: &str,
    alg: AlgorithmId,
    public_key: impl Fn(&Value) -> Vec<u8>,
    expected_tests: usize,
) {
    let Some(doc) = atp_test_vectors::read_json(file) else { return };
    let mut disagreements = Vec::new();
    let (mut total, mut valid, mut acceptable) = (0, 0, 0);
    for group in doc["testGroups"].as_array().unwrap() {
        let pk = public_key(group);
        for t in group["tests"].as_array().unwrap() {
            total += 1;
            let msg = hex_field(&t["msg"]);
            let sig = hex_field(&t["sig"]);
            let ctx = hex_field(&t["ctx"]);
            let accepted = PublicKey::from_bytes(alg, &pk).and_then(|k| k.verify(&msg, &ctx, &sig));
            let expected = match t["result"].as_str().unwrap() {
                "valid" => {
                    valid += 1;
                    true
                }
                "acceptable" => {
                    acceptable += 1;
                    false
                }
                _ => false,
            };
            if accepted.is_ok() != expected {
                disagreements.push(format!(
                    "tcId {} ({}), flags {}: expected {}, ATP says {:?}",
                    t["tcId"],
                    t["comment"].as_str().unwrap_or(""),
                    t["flags"],
                    t["result"],
                    accepted
                ));
            }
        }
    }
    println!(
        "{file}: {total} cases ({valid} valid, {acceptable} acceptable), {} disagreements",
        disagreements.len()
    );
    assert_eq!(total, expected_tests, "{file}: the whole file was read");
    assert!(disagreements.is_empty(), "{file}:\n{}", disagreements.join("\n"));
}

#[test]
fn wycheproof_mldsa_65_verify() {
    run(
        "wycheproof/mldsa_65_verify_test.json",
        AlgorithmId::MlDsa65,
        |group| hex_field(&group["publicKey"]),
        210,
    );
}

#[test]
fn wycheproof_ed25519() {
    run(
        "wycheproof/ed25519_test.json",
        AlgorithmId::Ed25519,
        |group| hex_field(&group["publicKey"]["pk"]),
        151,
    );
}
