//! Sealing at rest (`atp_crypto::sealing`): the RFC 8439 §2.8.2 AEAD vector, every kind of
//! tampering, and a differential run against OpenSSL's ChaCha20-Poly1305 (Python
//! `cryptography`) in both directions. Without that Python the differential part skips loudly,
//! and under `CI=true` it fails.
#![allow(clippy::unwrap_used)]

use atp_crypto::sealing::{DataKey, SEALED_OVERHEAD, SEALED_VERSION};
use std::io::Write;
use std::process::{Command, Stdio};

const RFC8439_PLAINTEXT: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you \
only one tip for the future, sunscreen would be it.";
const RFC8439_AAD: &str = "50515253c0c1c2c3c4c5c6c7";
const RFC8439_NONCE: &str = "070000004041424344454647";
const RFC8439_CIPHERTEXT_AND_TAG: &str = "\
d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6\
3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36\
92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc\
3ff4def08e4b7a9de576d26586cec64b6116\
1ae10b594f09e26a7e902ecbd0600691";

fn rfc_sealed() -> (DataKey, Vec<u8>, Vec<u8>) {
    let key = DataKey::from_bytes(&(0x80u8..0xa0).collect::<Vec<_>>()).unwrap();
    let mut sealed = vec![SEALED_VERSION];
    sealed.extend(hex::decode(RFC8439_NONCE).unwrap());
    sealed.extend(hex::decode(RFC8439_CIPHERTEXT_AND_TAG).unwrap());
    (key, hex::decode(RFC8439_AAD).unwrap(), sealed)
}

#[test]
fn opens_the_rfc8439_vector() {
    let (key, aad, sealed) = rfc_sealed();
    assert_eq!(&key.open(&aad, &sealed).unwrap()[..], RFC8439_PLAINTEXT);
}

#[test]
fn refuses_every_change() {
    let (key, aad, sealed) = rfc_sealed();
    // Every single-bit flip anywhere: version, nonce, ciphertext, tag.
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        let err = key.open(&aad, &bad).unwrap_err();
        assert_eq!(err.code(), "SEALED_DATA_INVALID", "byte {i}");
    }
    // Truncated anywhere, including to nothing; one byte appended.
    for len in 0..sealed.len() {
        assert!(key.open(&aad, &sealed[..len]).is_err(), "truncated to {len}");
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(key.open(&aad, &longer).is_err());
    // Another record, or another key.
    let mut other_aad = aad.clone();
    other_aad[0] ^= 1;
    assert!(key.open(&other_aad, &sealed).is_err());
    assert!(key.open(b"", &sealed).is_err());
    assert!(DataKey::generate().unwrap().open(&aad, &sealed).is_err());
    assert!(DataKey::from_bytes(&[0u8; 31]).is_err());
    assert!(DataKey::from_bytes(&[0u8; 33]).is_err());
}

#[test]
fn seals_with_fresh_nonces_and_hides_its_key() {
    let key = DataKey::generate().unwrap();
    let a = key.seal(b"r", b"attribute").unwrap();
    let b = key.seal(b"r", b"attribute").unwrap();
    assert_eq!(a.len(), SEALED_OVERHEAD + 9);
    assert_ne!(a[1..13], b[1..13], "a nonce was reused");
    assert_eq!(&key.open(b"r", &a).unwrap()[..], b"attribute");
    assert_eq!(format!("{key:?}"), "DataKey(..)");
}

/// OpenSSL's side: each request is `[op, key, aad, data]` in hex; "open" parses the sealed
/// layout and answers the plaintext or null, "seal" answers a sealed value.
const ORACLE: &str = r#"
import json, os, sys
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
out = []
for op, key, aad, data in json.load(sys.stdin):
    c = ChaCha20Poly1305(bytes.fromhex(key))
    aad, data = bytes.fromhex(aad), bytes.fromhex(data)
    if op == "seal":
        nonce = os.urandom(12)
        out.append((b"\x01" + nonce + c.encrypt(nonce, data, aad)).hex())
    else:
        try:
            if len(data) < 29 or data[0] != 1:
                raise InvalidTag()
            out.append(c.decrypt(data[1:13], data[13:], aad).hex())
        except InvalidTag:
            out.append(None)
json.dump(out, sys.stdout)
"#;

fn oracle(python: &std::path::Path, requests: &[[String; 4]]) -> Vec<Option<String>> {
    let mut child = Command::new(python)
        .args(["-c", ORACLE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(requests).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "oracle failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let answers: Vec<Option<String>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answers.len(), requests.len());
    answers
}

#[test]
fn agrees_with_openssl() {
    let Some(python) = atp_test_vectors::python_with(
        "from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305",
        "`cryptography` (ChaCha20-Poly1305)",
    ) else {
        return;
    };
    let random = |n: usize| {
        let mut b = vec![0u8; n];
        atp_crypto::random_bytes(&mut b).unwrap();
        b
    };
    // Lengths around the 64-byte ChaCha block and the 16-byte Poly1305 block.
    let lengths = [0usize, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 1000, 4096];
    let mut cases = Vec::new();
    for (i, &len) in lengths.iter().cycle().take(120).enumerate() {
        let key = DataKey::generate().unwrap();
        let aad = random(i % 40);
        let plaintext = random(len);
        cases.push((key, aad, plaintext));
    }
    // Direction 1: ATP seals, OpenSSL opens; a flipped byte is refused by both.
    let mut requests = Vec::new();
    let mut tampered = Vec::new();
    for (i, (key, aad, plaintext)) in cases.iter().enumerate() {
        let sealed = key.seal(aad, plaintext).unwrap();
        let mut bad = sealed.clone();
        let at = i % bad.len();
        bad[at] ^= 0x80;
        assert!(key.open(aad, &bad).is_err());
        for data in [&sealed, &bad] {
            requests.push([
                "open".to_owned(),
                hex::encode(key.as_bytes()),
                hex::encode(aad),
                hex::encode(data),
            ]);
        }
        tampered.push(bad);
    }
    let answers = oracle(&python, &requests);
    for (i, (_, _, plaintext)) in cases.iter().enumerate() {
        assert_eq!(answers[2 * i].as_deref(), Some(hex::encode(plaintext).as_str()), "case {i}");
        assert_eq!(answers[2 * i + 1], None, "OpenSSL opened tampered case {i}");
    }
    // Direction 2: OpenSSL seals, ATP opens, and refuses it under another record.
    let requests: Vec<[String; 4]> = cases
        .iter()
        .map(|(key, aad, plaintext)| {
            [
                "seal".to_owned(),
                hex::encode(key.as_bytes()),
                hex::encode(aad),
                hex::encode(plaintext),
            ]
        })
        .collect();
    let sealed = oracle(&python, &requests);
    for (i, ((key, aad, plaintext), sealed)) in cases.iter().zip(sealed).enumerate() {
        let sealed = hex::decode(sealed.unwrap()).unwrap();
        assert_eq!(&key.open(aad, &sealed).unwrap()[..], &plaintext[..], "case {i}");
        let mut other = aad.clone();
        other.push(0);
        assert!(key.open(&other, &sealed).is_err(), "case {i}");
    }
}
