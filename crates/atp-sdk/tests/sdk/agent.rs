//! The SDK against a real node (in-process, 127.0.0.1:0): the quickstart's three lines, two
//! agents exchanging a verified message, rotation, deactivation, resolution, log inclusion,
//! failover and the unreachable-node error.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use crate::support::{options, start_node};
use atp::{Agent, Error};

fn code(e: &Error) -> String {
    e.code().to_owned()
}

#[tokio::test]
async fn quickstart_two_agents_exchange_a_verified_message() {
    let node = start_node().await;
    let home = tempfile::tempdir().unwrap();
    let alice = Agent::connect_with(options(&node, home.path()), "alice").await.unwrap();
    let bob = Agent::connect_with(options(&node, home.path()), "bob").await.unwrap();
    assert!(alice.did().starts_with("did:atp:zQm"));
    assert_ne!(alice.did(), bob.did());

    let sealed = alice.seal(&bob.did(), b"invoice #42 approved").unwrap();
    let opened = bob.open(&sealed).await.unwrap();
    assert_eq!(opened.sender, alice.did());
    assert_eq!(opened.payload, b"invoice #42 approved");
    assert_eq!(opened.sender_key_seq, 0);

    // The same envelope again is a replay; another agent is not the audience.
    let again = bob.open(&sealed).await.unwrap_err();
    assert_eq!(code(&again), "ENVELOPE_REPLAY", "{again}");
    let carol = Agent::connect_with(options(&node, home.path()), "carol").await.unwrap();
    let not_mine = carol.open(&sealed).await.unwrap_err();
    assert_eq!(code(&not_mine), "ENVELOPE_NOT_FOR_ME", "{not_mine}");

    // One flipped signature bit: refused, and the nonce is not burnt for the genuine one.
    let fresh = alice.seal(&bob.did(), b"second").unwrap();
    let mut forged = fresh.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let bad = bob.open(&forged).await.unwrap_err();
    assert_eq!(code(&bad), "ENVELOPE_BAD_SIGNATURE", "{bad}");
    assert_eq!(bob.open(&fresh).await.unwrap().payload, b"second");

    // Garbage is a precise error, not a panic.
    let garbage = bob.open(b"not an envelope").await.unwrap_err();
    assert_eq!(code(&garbage), "ENVELOPE_MALFORMED", "{garbage}");
}

#[tokio::test]
async fn reconnect_loads_the_same_identity_and_keys_are_private() {
    let node = start_node().await;
    let home = tempfile::tempdir().unwrap();
    let first = Agent::connect_with(options(&node, home.path()), "billing-bot").await.unwrap();
    let did = first.did();
    drop(first);
    let again = Agent::connect_with(options(&node, home.path()), "billing-bot").await.unwrap();
    assert_eq!(again.did(), did);
    let keys = home.path().join("agents/billing-bot/keys");
    let files: Vec<_> = std::fs::read_dir(&keys).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 2, "the current key and the committed next key: {files:?}");
    #[cfg(unix)]
    for f in &files {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    // The node holds the DID: another agent resolves it from the verified log.
    let other = Agent::connect_with(options(&node, home.path()), "other").await.unwrap();
    let resolved = other.resolve(&did).await.unwrap();
    assert_eq!(resolved.did_document.id, did);

    let bad = Agent::connect_with(options(&node, home.path()), "../escape").await.unwrap_err();
    assert_eq!(code(&bad), "AGENT_NAME_INVALID", "{bad}");
}

#[tokio::test]
async fn rotation_and_deactivation_are_registered_and_verified_by_peers() {
    let node = start_node().await;
    let home = tempfile::tempdir().unwrap();
    let alice = Agent::connect_with(options(&node, home.path()), "alice").await.unwrap();
    let bob = Agent::connect_with(options(&node, home.path()), "bob").await.unwrap();
    let before = alice.seal(&bob.did(), b"before rotation").unwrap();
    assert_eq!(
        bob.open(&alice.seal(&bob.did(), b"warm the cache").unwrap()).await.unwrap().sender_key_seq,
        0
    );

    let state = alice.rotate().await.unwrap();
    assert_eq!(state.key_sequence, 1);
    // Bob's cached log is one event short: he refetches and verifies the rotation.
    let after = alice.seal(&bob.did(), b"after rotation").unwrap();
    let opened = bob.open(&after).await.unwrap();
    assert_eq!((opened.sender_key_seq, opened.payload.as_slice()), (1, &b"after rotation"[..]));
    // Sealed with the old key while it was valid: still accepted.
    assert_eq!(bob.open(&before).await.unwrap().sender_key_seq, 0);

    // The rotation survives a restart, and the node agrees.
    let did = alice.did();
    drop(alice);
    let alice = Agent::connect_with(options(&node, home.path()), "alice").await.unwrap();
    assert_eq!((alice.did(), alice.state().key_sequence), (did.clone(), 1));
    assert_eq!(bob.key_event_log_of(&did).await.unwrap().len(), 2);

    let state = alice.deactivate().await.unwrap();
    assert!(state.deactivated);
    let refused = alice.seal(&bob.did(), b"too late").unwrap_err();
    assert_eq!(code(&refused), "IDENTITY_DEACTIVATED", "{refused}");
    let resolved = bob.resolve(&did).await.unwrap();
    assert!(resolved.did_document_metadata.deactivated);
    let again = alice.rotate().await.unwrap_err();
    assert_eq!(code(&again), "IDENTITY_DEACTIVATED", "{again}");
}

#[tokio::test]
async fn inclusion_of_own_events_is_proved_against_a_verified_checkpoint() {
    let node = start_node().await;
    let home = tempfile::tempdir().unwrap();
    let alice = Agent::connect_with(options(&node, home.path()), "alice").await.unwrap();
    alice.rotate().await.unwrap();
    let log = alice.key_event_log();
    let icp = alice.verify_inclusion(&log[0]).await.unwrap();
    let rot = alice.verify_inclusion(&log[1]).await.unwrap();
    assert!(rot.leaf_index > icp.leaf_index);
    assert!(rot.checkpoint.size > rot.leaf_index);
    assert_eq!(alice.node_did().await.unwrap(), node.did);

    // An event the log never saw: not found, after waiting a bounded time.
    let mut opts = options(&node, home.path());
    opts.inclusion_wait = std::time::Duration::from_millis(300);
    let stranger_home = tempfile::tempdir().unwrap();
    let offline = atp_core_event(stranger_home.path());
    let bob = Agent::connect_with(opts, "bob").await.unwrap();
    let missing = bob.verify_inclusion(&offline).await.unwrap_err();
    assert_eq!(code(&missing), "TLOG_LEAF_NOT_FOUND", "{missing}");
}

/// An inception event that was never submitted anywhere.
fn atp_core_event(_dir: &std::path::Path) -> atp::core::kel::SignedEvent {
    use atp::crypto::{AlgorithmId, SigningKey};
    let k = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let n = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    atp::core::kel::incept(&k, n.public_key_ref(), vec![], "2026-01-01T00:00:00Z").unwrap()
}

#[tokio::test]
async fn failover_to_the_next_endpoint_and_a_clear_error_when_none_answers() {
    let node = start_node().await;
    let home = tempfile::tempdir().unwrap();
    // Port 1 on loopback refuses connections: the first endpoint fails, the second serves.
    let mut opts = atp::AgentOptions::new(&format!("http://127.0.0.1:1,{}", node.url));
    opts.home = Some(home.path().to_path_buf());
    let agent = Agent::connect_with(opts, "failover").await.unwrap();
    assert!(agent.did().starts_with("did:atp:"));

    let mut opts = atp::AgentOptions::new("http://127.0.0.1:1");
    opts.home = Some(home.path().to_path_buf());
    opts.node.retry.initial_backoff = std::time::Duration::from_millis(10);
    let err = Agent::connect_with(opts, "nobody").await.unwrap_err();
    assert_eq!(code(&err), "NODE_UNREACHABLE");
    let text = err.to_string();
    assert!(
        text.contains("node unreachable at http://127.0.0.1:1")
            && text.contains("is `atp-node` running?"),
        "{text}"
    );

    let err = Agent::connect_with(atp::AgentOptions::new("ftp://x"), "x").await.unwrap_err();
    assert_eq!(code(&err), "ENDPOINT_INVALID", "{err}");
}

#[tokio::test]
async fn credentials_issued_by_an_agent_verify_and_tampering_fails() {
    let node = start_node().await;
    let home = tempfile::tempdir().unwrap();
    let issuer = Agent::connect_with(options(&node, home.path()), "issuer").await.unwrap();
    let holder = Agent::connect_with(options(&node, home.path()), "holder").await.unwrap();
    let vc = serde_json::json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "credentialSubject": {"id": holder.did(), "role": "billing"},
    });
    let signed = issuer.issue_credential(&vc).unwrap();
    let verified = holder.verify_credential(&signed).await.unwrap();
    assert_eq!(verified.credential.issuer, issuer.did());
    let mut tampered = signed.clone();
    tampered["credentialSubject"]["role"] = "admin".into();
    let err = holder.verify_credential(&tampered).await.unwrap_err();
    assert_eq!(code(&err), "CRYPTOGRAPHIC_SECURITY_ERROR", "{err}");
}
