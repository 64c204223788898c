//! The key file: round trips, encryption, permissions and tampering.
#![allow(clippy::unwrap_used)]

use atp_crypto::keyfile::{self, KdfParams};
use atp_crypto::{AlgorithmId, CryptoError, SigningKey};

const FAST: KdfParams = KdfParams { m_kib: 8 * 1024, t: 1, p: 1 };

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("atp-keyfile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn plain_and_encrypted_round_trips() {
    for alg in AlgorithmId::all() {
        let key = SigningKey::generate(*alg).unwrap();
        let plain = keyfile::encode(&key, None, FAST).unwrap();
        assert_eq!(keyfile::decode(&plain, None).unwrap(), key);
        let enc = keyfile::encode(&key, Some(b"correct horse"), FAST).unwrap();
        assert!(!enc.contains("\"seed\""), "no plaintext seed in an encrypted file");
        assert_eq!(keyfile::decode(&enc, Some(b"correct horse")).unwrap(), key);
        assert_eq!(keyfile::decode(&enc, Some(b"wrong")).unwrap_err(), CryptoError::KeyFileDecrypt);
        assert!(keyfile::decode(&enc, None).is_err());
        assert!(keyfile::decode(&plain, Some(b"x")).is_err());
    }
}

#[test]
fn tampering_is_detected() {
    let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let other = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let enc = keyfile::encode(&key, Some(b"pw"), FAST).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&enc).unwrap();
    // Swapping the public key breaks the AEAD's associated data.
    let other_file: serde_json::Value =
        serde_json::from_str(&keyfile::encode(&other, None, FAST).unwrap()).unwrap();
    v["publicKey"] = other_file["publicKey"].clone();
    assert_eq!(
        keyfile::decode(&v.to_string(), Some(b"pw")).unwrap_err(),
        CryptoError::KeyFileDecrypt
    );
    // In a plain file, a mismatched public key is refused.
    let mut p: serde_json::Value =
        serde_json::from_str(&keyfile::encode(&key, None, FAST).unwrap()).unwrap();
    p["publicKey"] = other_file["publicKey"].clone();
    assert!(matches!(keyfile::decode(&p.to_string(), None), Err(CryptoError::KeyFile(_))));
    // KDF parameters below the floor (a downgrade of the passphrase protection) are refused.
    let mut weak: serde_json::Value = serde_json::from_str(&enc).unwrap();
    weak["secret"]["mKib"] = 1.into();
    assert!(matches!(
        keyfile::decode(&weak.to_string(), Some(b"pw")),
        Err(CryptoError::KeyFile(_))
    ));
    // Unknown versions and fields are refused.
    let mut ver: serde_json::Value = serde_json::from_str(&enc).unwrap();
    ver["version"] = 2.into();
    assert!(keyfile::decode(&ver.to_string(), Some(b"pw")).is_err());
    let mut extra: serde_json::Value = serde_json::from_str(&enc).unwrap();
    extra["comment"] = "hi".into();
    assert!(keyfile::decode(&extra.to_string(), Some(b"pw")).is_err());
    assert!(keyfile::decode("not json", None).is_err());
}

#[cfg(unix)]
#[test]
fn files_are_written_0600_and_loose_files_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("mode");
    let path = dir.join("agent.key");
    let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    keyfile::write(&path, &key, Some(b"pw"), FAST).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(keyfile::read(&path, Some(b"pw")).unwrap(), key);
    // No overwrite.
    assert!(keyfile::write(&path, &key, None, FAST).is_err());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(
        matches!(keyfile::read(&path, Some(b"pw")), Err(CryptoError::KeyFile(m)) if m.contains("chmod 600"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
