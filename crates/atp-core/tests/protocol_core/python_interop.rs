//! Interoperability with an independent implementation: `examples/python/atp_protocol.py`,
//! written from docs/protocol.md alone on top of Python `cryptography` (OpenSSL). Python makes
//! a `did:atp` key event log and an envelope that Rust must verify, and verifies a log and an
//! envelope that Rust made.
//!
//! Python comes from `$ATP_PYTHON`, else the venv that `scripts/test.sh` creates
//! (`target/venv`), else `python3` on `PATH`; it must have `cryptography` with ML-DSA. Without
//! one, the test skips loudly, except under `CI=true`, where it fails.
#![allow(clippy::unwrap_used)]

use atp_core::envelope::{self, Envelope, InMemoryReplayCache, SealedEnvelope, VerifyContext};
use atp_core::kel::{self, KeyEventLog, SignedEvent};
use atp_crypto::{AlgorithmId, SigningKey};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> Option<PathBuf> {
    atp_test_vectors::python_with(
        "from cryptography.hazmat.primitives.asymmetric import mldsa",
        "`cryptography` (ML-DSA)",
    )
}

fn run(python: &Path, cmd: &str, dir: &Path) -> String {
    let out = Command::new(python)
        .arg(root().join("examples/python/atp_protocol.py"))
        .arg(cmd)
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python {cmd} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("atp-py-interop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_json(path: PathBuf) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn python_and_rust_interoperate() {
    let Some(python) = python() else { return };
    let dir = tempdir();

    // Python → Rust.
    run(&python, "make", &dir);
    let meta = read_json(dir.join("python_meta.json"));
    let did = meta["did"].as_str().unwrap();
    let events = kel::parse_log(&std::fs::read(dir.join("python_kel.json")).unwrap()).unwrap();
    let state = KeyEventLog::default().verify_did(did, &events).unwrap();
    assert_eq!(state.sequence, 1);
    let sealed =
        SealedEnvelope::from_bytes(&std::fs::read(dir.join("python_envelope.bin")).unwrap())
            .unwrap();
    let lookup = |sender: &str, seq: u64| {
        KeyEventLog::default()
            .key_validity(sender, &events, seq)?
            .ok_or(atp_core::CoreError::EnvelopeUnknownSender { did: sender.into(), seq })
    };
    let cache = InMemoryReplayCache::new(16);
    let me = meta["recipient"].as_str().unwrap();
    let ctx = VerifyContext::new(me, meta["now"].as_i64().unwrap(), &lookup, &cache);
    envelope::verify(&sealed, &ctx).unwrap();
    assert_eq!(sealed.envelope.payload, b"hello from python");
    // A Python envelope with one payload bit flipped must fail in Rust.
    let mut tampered = sealed.clone();
    tampered.envelope.payload[0] ^= 1;
    let cache = InMemoryReplayCache::new(16);
    let ctx = VerifyContext::new(me, meta["now"].as_i64().unwrap(), &lookup, &cache);
    assert_eq!(envelope::verify(&tampered, &ctx).unwrap_err().code(), "ENVELOPE_BAD_SIGNATURE");

    // Rust → Python.
    let k0 = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[0x41; 64]).unwrap();
    let k1 = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[0x42; 64]).unwrap();
    let k2 = SigningKey::from_seed(AlgorithmId::MlDsa65Ed25519, &[0x43; 64]).unwrap();
    let icp = kel::incept(&k0, &k1.public_key(), Vec::new(), "2026-03-01T00:00:00Z").unwrap();
    let state = kel::verify_log(std::slice::from_ref(&icp)).unwrap();
    let rot = kel::rotate(&state, &k1, &k2.public_key(), None, "2026-03-02T00:00:00Z").unwrap();
    let log: Vec<SignedEvent> = vec![icp, rot];
    let did = state.did.clone();
    let recipient = "did:atp:zQmRecipientOfTheRustEnvelope";
    let issued = 1_772_409_600_000 + 5_000; // 2026-03-02T00:00:05Z
    let env = Envelope::new(
        &did,
        1,
        vec![recipient.into()],
        issued,
        issued + 60_000,
        "text/plain",
        b"hello from rust".to_vec(),
    )
    .unwrap();
    let wire = env.seal(&k1).unwrap().to_bytes().unwrap();
    let events: Vec<serde_json::Value> =
        log.iter().map(|e| serde_json::from_str(&e.to_json().unwrap()).unwrap()).collect();
    std::fs::write(dir.join("rust_kel.json"), serde_json::to_vec(&events).unwrap()).unwrap();
    std::fs::write(dir.join("rust_envelope.bin"), wire).unwrap();
    let meta =
        serde_json::json!({"did": did, "recipient": recipient, "payload": "hello from rust"});
    std::fs::write(dir.join("rust_meta.json"), meta.to_string()).unwrap();
    let said = run(&python, "verify", &dir);
    assert!(said.contains("ok: 2 events"), "{said}");
    std::fs::remove_dir_all(&dir).unwrap();
}
