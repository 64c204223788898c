//! First-run bootstrap and later-run verification of the data directory: modes, the node
//! identity (keys + KEL), the admin token, and refusal of tampered or exposed files.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};

use atp_core::kel;
use atp_crypto::keyfile::{self, KdfParams};
use atp_crypto::{AlgorithmId, SigningKey};
use atp_node::bootstrap::{KEL_FILE, KEY_FILE, NEXT_KEY_FILE, NODE_SERVICE_ID, bootstrap};
use atp_node::config::{NodeConfig, Passphrase};
use atp_node::{AdminToken, Bootstrapped, NodeError};

fn config(data_dir: &Path) -> NodeConfig {
    NodeConfig { data_dir: data_dir.to_owned(), ..NodeConfig::default() }
}

fn boot(config: &NodeConfig) -> Bootstrapped {
    match bootstrap(config) {
        Ok(b) => b,
        Err(e) => panic!("bootstrap failed: {e}"),
    }
}

fn boot_err(config: &NodeConfig) -> NodeError {
    match bootstrap(config) {
        Ok(b) => panic!("bootstrap succeeded: {b:?}"),
        Err(e) => e,
    }
}

/// A fresh temporary directory and a data directory path inside it (not yet created).
fn fresh() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("atp-data");
    (tmp, data)
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn token_text(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin.token")).expect("token").trim_end().to_owned()
}

/// Replace a key file with a freshly generated key (mode 0600).
fn replace_key(path: &Path) {
    std::fs::remove_file(path).expect("remove");
    let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("generate");
    keyfile::write(path, &key, None, KdfParams::DEFAULT).expect("write key");
}

#[test]
fn first_run_creates_a_private_data_dir_keys_token_and_a_verifying_kel() {
    let (_tmp, data) = fresh();
    let node = boot(&config(&data));
    assert!(node.created_data_dir);
    assert!(node.identity.created());
    assert!(node.admin_token.created());

    #[cfg(unix)]
    {
        assert_eq!(mode(&data), 0o700, "data dir");
        for f in [KEY_FILE, NEXT_KEY_FILE, KEL_FILE, "admin.token", "node.lock"] {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
    }
    // No temporary files are left behind.
    let mut names: Vec<String> = std::fs::read_dir(&data)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["admin.token", "node.kel.json", "node.key", "node.lock", "node.next.key"]);

    // The KEL on disk verifies on its own and names the keys on disk.
    let events = kel::parse_log(&std::fs::read(data.join(KEL_FILE)).expect("kel")).expect("parse");
    let state = kel::verify_log(&events).expect("verify");
    assert_eq!(state.did, node.identity.did());
    assert!(state.did.starts_with("did:atp:z"));
    assert_eq!(events.len(), 1);
    let key = keyfile::read(&data.join(KEY_FILE), None).expect("key");
    let next = keyfile::read(&data.join(NEXT_KEY_FILE), None).expect("next");
    assert_eq!(key.algorithm(), AlgorithmId::MlDsa65Ed25519);
    assert_eq!(key.public_key_ref(), &state.current_key);
    assert_eq!(
        state.next_commitment.as_deref(),
        Some(kel::key_commitment(next.public_key_ref()).expect("commitment").as_str())
    );
    assert_eq!(node.identity.signing_key().public_key_ref(), &state.current_key);

    // The node's endpoint is a service of its DID.
    let service = state.services.iter().find(|s| s.id == NODE_SERVICE_ID).expect("service");
    assert_eq!(service.service_endpoint, "http://127.0.0.1:7443");
    assert_eq!(node.identity.advertised_endpoint(), Some("http://127.0.0.1:7443"));

    // The token: 32 random bytes, base64url without padding.
    let token = token_text(&data);
    assert_eq!(token.len(), 43);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert!(node.admin_token.verify(&token));
}

#[test]
fn a_second_run_loads_the_same_identity_and_token() {
    let (_tmp, data) = fresh();
    // The first run's lock is released with the rest of it; only its identity is kept.
    let first = boot(&config(&data)).identity;
    let token = token_text(&data);
    let second = boot(&config(&data));
    assert!(!second.created_data_dir);
    assert!(!second.identity.created());
    assert!(!second.admin_token.created());
    assert_eq!(second.identity.did(), first.did());
    assert_eq!(second.identity.kel(), first.kel());
    assert_eq!(
        second.identity.signing_key().public_key_ref(),
        first.signing_key().public_key_ref()
    );
    assert_eq!(token_text(&data), token);
    assert!(second.admin_token.verify(&token));
}

#[test]
fn one_node_per_data_directory() {
    let (_tmp, data) = fresh();
    let running = boot(&config(&data));
    let e = boot_err(&config(&data));
    let lock = data.join(atp_node::bootstrap::DATA_DIR_LOCK_FILE);
    assert!(
        matches!(&e, NodeError::DataDirInUse { path, lock: l } if *path == data && *l == lock),
        "{e:?}"
    );
    assert!(e.to_string().contains("in use by another atp-node"), "{e}");
    drop(running);
    assert!(!boot(&config(&data)).identity.created(), "free again once the first is gone");
}

#[test]
fn a_public_url_is_recorded_and_port_zero_records_none() {
    let (_tmp, data) = fresh();
    let mut c = config(&data);
    c.public_url = Some("https://node.example:8443".into());
    assert_eq!(boot(&c).identity.advertised_endpoint(), Some("https://node.example:8443"));

    let (_tmp2, data2) = fresh();
    let mut c = config(&data2);
    c.listen = "127.0.0.1:0".parse().expect("addr");
    let node = boot(&c);
    assert_eq!(node.identity.advertised_endpoint(), None);
    assert!(node.identity.state().services.is_empty());
}

#[test]
fn two_nodes_get_different_identities_and_tokens() {
    let (_a, da) = fresh();
    let (_b, db) = fresh();
    let a = boot(&config(&da));
    let b = boot(&config(&db));
    assert_ne!(a.identity.did(), b.identity.did());
    assert_ne!(token_text(&da), token_text(&db));
    assert!(!a.admin_token.verify(&token_text(&db)));
}

#[test]
fn a_replaced_current_key_is_refused() {
    let (_tmp, data) = fresh();
    let did = boot(&config(&data)).identity.did().to_owned();
    replace_key(&data.join(KEY_FILE));
    let e = boot_err(&config(&data));
    assert!(matches!(e, NodeError::KeyMismatch { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&did) && msg.contains("node.key") && msg.contains("refusing"), "{msg}");
}

#[test]
fn a_replaced_next_key_is_refused() {
    let (_tmp, data) = fresh();
    boot(&config(&data));
    replace_key(&data.join(NEXT_KEY_FILE));
    let e = boot_err(&config(&data));
    assert!(matches!(e, NodeError::NextKeyMismatch { .. }), "{e:?}");
    assert!(e.to_string().contains("node.next.key"), "{e}");
}

#[test]
fn swapped_key_files_are_refused() {
    let (_tmp, data) = fresh();
    boot(&config(&data));
    let (k, n, t) = (data.join(KEY_FILE), data.join(NEXT_KEY_FILE), data.join("swap"));
    std::fs::rename(&k, &t).expect("rename");
    std::fs::rename(&n, &k).expect("rename");
    std::fs::rename(&t, &n).expect("rename");
    let e = boot_err(&config(&data));
    assert!(matches!(e, NodeError::KeyMismatch { .. }), "{e:?}");
}

#[test]
fn a_tampered_kel_is_refused() {
    let (_tmp, data) = fresh();
    boot(&config(&data));
    let path = data.join(KEL_FILE);
    let original = std::fs::read_to_string(&path).expect("kel");

    // Change one character of the signature.
    let at = original.find("\"sig\":\"").expect("sig") + 10;
    let mut tampered = original.clone().into_bytes();
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(&path, &tampered).expect("write");
    let e = boot_err(&config(&data));
    assert!(matches!(e, NodeError::Kel { .. }), "{e:?}");
    assert!(e.to_string().contains("node.kel.json") && e.to_string().contains("refusing"));

    // Change a service endpoint (the signature no longer covers the body).
    std::fs::write(&path, original.replace("127.0.0.1:7443", "127.0.0.1:7444")).expect("write");
    assert!(matches!(boot_err(&config(&data)), NodeError::Kel { .. }));

    // Not JSON at all.
    std::fs::write(&path, "garbage").expect("write");
    assert!(matches!(boot_err(&config(&data)), NodeError::Kel { .. }));

    // An empty log.
    std::fs::write(&path, "[]").expect("write");
    assert!(matches!(boot_err(&config(&data)), NodeError::Kel { .. }));
}

#[test]
fn another_nodes_valid_kel_is_refused() {
    let (_a, da) = fresh();
    let (_b, db) = fresh();
    boot(&config(&da));
    boot(&config(&db));
    std::fs::copy(db.join(KEL_FILE), da.join(KEL_FILE)).expect("copy");
    let e = boot_err(&config(&da));
    assert!(matches!(e, NodeError::KeyMismatch { .. }), "{e:?}");
}

#[test]
fn a_corrupt_key_file_is_refused() {
    let (_tmp, data) = fresh();
    boot(&config(&data));
    std::fs::write(data.join(KEY_FILE), "{\"format\":\"atp-key\"}").expect("write");
    let e = boot_err(&config(&data));
    assert!(matches!(e, NodeError::KeyFile { .. }), "{e:?}");
    assert!(e.to_string().contains("node.key"), "{e}");
}

#[test]
fn an_incomplete_identity_is_refused_with_instructions() {
    let (_tmp, data) = fresh();
    boot(&config(&data));
    std::fs::remove_file(data.join(KEL_FILE)).expect("remove");
    let e = boot_err(&config(&data));
    assert!(matches!(e, NodeError::IncompleteIdentity { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("missing node.kel.json"), "{msg}");
    assert!(msg.contains("found node.key, node.next.key"), "{msg}");
    // The refusal changed nothing.
    assert!(data.join(KEY_FILE).exists() && !data.join(KEL_FILE).exists());

    let (_tmp2, data2) = fresh();
    boot(&config(&data2));
    std::fs::remove_file(data2.join(NEXT_KEY_FILE)).expect("remove");
    let e = boot_err(&config(&data2));
    assert!(e.to_string().contains("missing node.next.key"), "{e}");
}

#[cfg(unix)]
#[test]
fn exposed_secret_files_are_refused_like_ssh_does() {
    for (file, bad_mode) in [
        ("admin.token", 0o644),
        ("admin.token", 0o604),
        (KEY_FILE, 0o640),
        (NEXT_KEY_FILE, 0o660),
        (KEY_FILE, 0o602),
    ] {
        let (_tmp, data) = fresh();
        boot(&config(&data));
        let path = data.join(file);
        chmod(&path, bad_mode);
        let e = boot_err(&config(&data));
        assert!(
            matches!(e, NodeError::InsecureFilePermissions { mode, .. } if mode == bad_mode),
            "{file} {bad_mode:o}: {e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains(&format!("chmod 600 {}", path.display())), "{msg}");
        chmod(&path, 0o600);
        boot(&config(&data));
        // 0400 (read-only for the owner) is fine too.
        chmod(&path, 0o400);
        boot(&config(&data));
    }
}

#[cfg(unix)]
#[test]
fn a_data_dir_writable_by_others_is_refused() {
    let (_tmp, data) = fresh();
    boot(&config(&data));
    chmod(&data, 0o777);
    let e = boot_err(&config(&data));
    assert!(matches!(e, NodeError::InsecureDirectoryPermissions { .. }), "{e:?}");
    assert!(e.to_string().contains("chmod 700"), "{e}");
    // Readable by others: allowed (with a warning), since every secret file is 0600.
    chmod(&data, 0o755);
    boot(&config(&data));
}

#[test]
fn an_existing_empty_data_dir_is_used() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let node = boot(&config(tmp.path()));
    assert!(!node.created_data_dir);
    assert!(node.identity.created());
    assert!(tmp.path().join(KEL_FILE).exists());
}

#[test]
fn a_data_dir_that_is_a_file_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("file");
    std::fs::write(&file, "x").expect("write");
    let e = boot_err(&config(&file));
    assert!(e.to_string().contains("not a directory"), "{e}");
}

#[test]
fn a_malformed_admin_token_is_refused() {
    for bad in ["", "short", "not base64url!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", "a b"] {
        let (_tmp, data) = fresh();
        boot(&config(&data));
        let path = data.join("admin.token");
        std::fs::write(&path, bad).expect("write");
        let e = boot_err(&config(&data));
        assert!(matches!(e, NodeError::AdminToken { .. }), "{bad:?}: {e:?}");
        assert!(e.to_string().contains("Delete the file and restart"), "{e}");
    }
}

#[test]
fn an_operator_supplied_token_is_accepted() {
    let (_tmp, data) = fresh();
    boot(&config(&data));
    let mine = "x".repeat(64); // 48 bytes of base64url
    std::fs::write(data.join("admin.token"), format!("{mine}\n")).expect("write");
    let node = boot(&config(&data));
    assert!(node.admin_token.verify(&mine));
}

#[test]
fn token_verification_is_exact() {
    let (_tmp, data) = fresh();
    let node = boot(&config(&data));
    let token = token_text(&data);
    let t = &node.admin_token;
    assert!(t.verify(&token));
    assert!(!t.verify(""));
    assert!(!t.verify(&token[..42]));
    assert!(!t.verify(&format!("{token}x")));
    assert!(!t.verify(&format!("{token}\n")));
    assert!(!t.verify(&format!("Bearer {token}")));
    assert!(!t.verify(&token.to_uppercase()));
    let mut flipped = token.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    assert!(!t.verify(std::str::from_utf8(&flipped).expect("utf-8")));

    // Loading the file directly gives an equivalent token.
    let loaded = AdminToken::load(&data.join("admin.token")).expect("load");
    assert!(loaded.verify(&token) && !loaded.created());
}

#[test]
fn debug_output_never_shows_the_token_or_keys() {
    let (_tmp, data) = fresh();
    let node = boot(&config(&data));
    let token = token_text(&data);
    let debug = format!("{node:?}");
    assert!(!debug.contains(&token), "{debug}");
    assert!(format!("{:?}", node.admin_token).contains("<redacted>"));
    let key_json = std::fs::read_to_string(data.join(KEY_FILE)).expect("key");
    let seed = key_json.split("\"seed\": \"").nth(1).and_then(|s| s.split('"').next());
    let seed = seed.expect("plain key file has a seed");
    assert!(!debug.contains(seed));
}

#[test]
fn a_passphrase_encrypts_the_keys_and_is_required_to_load_them() {
    let (_tmp, data) = fresh();
    let mut c = config(&data);
    c.key_passphrase = Some(Passphrase::new("s3cret passphrase".into()));
    let did = boot(&c).identity.did().to_owned();
    for f in [KEY_FILE, NEXT_KEY_FILE] {
        let text = std::fs::read_to_string(data.join(f)).expect("key");
        assert!(text.contains("argon2id-xchacha20poly1305"), "{f} is not encrypted");
        assert!(!text.contains("\"seed\""), "{f} holds a plaintext seed");
    }

    let e = boot_err(&config(&data));
    assert!(matches!(e, NodeError::KeyFile { .. }), "{e:?}");
    assert!(e.to_string().contains("passphrase is required"), "{e}");

    let mut wrong = config(&data);
    wrong.key_passphrase = Some(Passphrase::new("wrong".into()));
    assert!(matches!(boot_err(&wrong), NodeError::KeyFile { .. }));

    assert_eq!(boot(&c).identity.did(), did);
}

#[test]
fn a_passphrase_on_plain_key_files_is_refused() {
    let (_tmp, data) = fresh();
    boot(&config(&data));
    let mut c = config(&data);
    c.key_passphrase = Some(Passphrase::new("late".into()));
    let e = boot_err(&c);
    assert!(e.to_string().contains("not encrypted"), "{e}");
}
