//! MessageService against a real node: envelopes and challenge/response authentication.
#![allow(missing_docs, clippy::unwrap_used)]

use crate::support::*;
use atp_core::envelope::Envelope;
use atp_crypto::SigningContext;
use atp_grpc::v1 as pb;
use atp_server::message::{Authentication, SessionToken, split_session_token};

fn envelope(sender: &Agent, to: &str, issued_at: i64, _nonce: u8) -> Vec<u8> {
    Envelope::new(
        &sender.did,
        0,
        vec![to.to_owned()],
        issued_at,
        issued_at + 60_000,
        "text/plain",
        b"hello".to_vec(),
    )
    .unwrap()
    .seal(&sender.key)
    .unwrap()
    .to_bytes()
    .unwrap()
}

/// In a cluster an envelope is recorded in the store too. When that record cannot be made, the
/// envelope is not accepted (UNAVAILABLE), and a retry is not called a replay by this node's
/// own cache: the node forgot it.
#[tokio::test]
async fn an_envelope_not_recorded_in_the_store_is_not_a_replay_on_retry() {
    let node = start_with(atp_server::ServerSettings {
        replay_through_store: true,
        ..atp_server::ServerSettings::default()
    })
    .await;
    let alice = store_agent(&node.store, T0_MS - 600_000).await;
    let bob = "did:example:bob";
    let mut m = node.messages().await;
    let req = |env: Vec<u8>| pb::VerifyEnvelopeRequest { envelope: env, verifier_did: bob.into() };
    // Recorded in the store: accepted, then a replay.
    let first = envelope(&alice, bob, T0_MS, 1);
    m.verify_envelope(req(first.clone())).await.unwrap();
    assert_eq!(reason(&m.verify_envelope(req(first)).await.unwrap_err()), "ENVELOPE_REPLAY");
    // The store goes away (the sender's key stays cached): not accepted, twice.
    node.store.close().await.unwrap();
    let second = envelope(&alice, bob, T0_MS, 2);
    for attempt in 0..2 {
        let e = m.verify_envelope(req(second.clone())).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable, "attempt {attempt}: {e:?}");
        assert_eq!(reason(&e), "UNAVAILABLE", "attempt {attempt}");
    }
}

/// A purge round keeps up with expiry under load: it deletes batch after batch while they come
/// back full, and never a record still live.
#[tokio::test]
async fn a_purge_round_deletes_every_expired_record_in_batches() {
    let node = start_with(atp_server::ServerSettings {
        replay_through_store: true,
        ..atp_server::ServerSettings::default()
    })
    .await;
    let skew = node.state.settings.limits.clock_skew_ms();
    let expired = T0_MS - skew - 1;
    for i in 0..2_500u32 {
        let mut digest = [0u8; 32];
        digest[..4].copy_from_slice(&i.to_be_bytes());
        assert!(node.store.record_once(digest, expired, T0_MS - 3_600_000).await.unwrap());
    }
    let live = [0xffu8; 32];
    assert!(node.store.record_once(live, T0_MS + 60_000, T0_MS).await.unwrap());
    assert_eq!(atp_server::cluster::purge_round(&node.state).await.unwrap(), 2_500);
    assert_eq!(atp_server::cluster::purge_round(&node.state).await.unwrap(), 0);
    assert!(node.store.once_record_live(live, T0_MS).await.unwrap(), "a live record was purged");
}

#[tokio::test]
async fn verify_envelope_ok_expired_replayed_not_for_me() {
    let node = start().await;
    let alice = store_agent(&node.store, T0_MS - 600_000).await;
    let bob = "did:example:bob";
    let mut m = node.messages().await;
    let size = node.log_size().await;
    let req = |env: Vec<u8>, me: &str| pb::VerifyEnvelopeRequest {
        envelope: env,
        verifier_did: me.into(),
    };

    let env = envelope(&alice, bob, T0_MS, 1);
    let ok = m.verify_envelope(req(env.clone(), bob)).await.unwrap().into_inner();
    assert_eq!(ok.sender_did, alice.did);
    assert_eq!(ok.payload, b"hello");
    assert_eq!(ok.checks_passed.len(), 10);

    let e = m.verify_envelope(req(env.clone(), bob)).await.unwrap_err();
    assert_eq!(reason(&e), "ENVELOPE_REPLAY");
    let e = m.verify_envelope(req(env.clone(), "did:example:carol")).await.unwrap_err();
    assert_eq!(reason(&e), "ENVELOPE_NOT_FOR_ME");

    let old = envelope(&alice, bob, T0_MS - 200_000, 2);
    let e = m.verify_envelope(req(old, bob)).await.unwrap_err();
    assert_eq!(reason(&e), "ENVELOPE_EXPIRED");

    let mut forged = envelope(&alice, bob, T0_MS, 3);
    let n = forged.len();
    forged[n - 1] ^= 1;
    let e = m.verify_envelope(req(forged, bob)).await.unwrap_err();
    assert_eq!(reason(&e), "ENVELOPE_BAD_SIGNATURE");

    let e = m.verify_envelope(req(b"garbage".to_vec(), bob)).await.unwrap_err();
    assert_eq!(reason(&e), "ENVELOPE_MALFORMED");
    let e = m.verify_envelope(req(envelope(&alice, bob, T0_MS, 4), "")).await.unwrap_err();
    assert_eq!(reason(&e), "FIELD_INVALID");

    // An unknown sender.
    let stranger = Agent { did: format!("{}x", alice.did), key: composite(), kel: vec![] };
    let e = m.verify_envelope(req(envelope(&stranger, bob, T0_MS, 5), bob)).await.unwrap_err();
    assert_eq!(reason(&e), "ENVELOPE_UNKNOWN_SENDER");
    assert_eq!(node.log_size().await, size);
}

#[tokio::test]
async fn challenge_and_authenticate() {
    let node = start().await;
    let alice = store_agent(&node.store, T0_MS - 600_000).await;
    let mut m = node.messages().await;
    let size = node.log_size().await;
    let audience = "https://service.example";
    let ch = m
        .create_challenge(pb::CreateChallengeRequest {
            did: alice.did.clone(),
            audience: audience.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ch.challenge.len(), 32);
    assert_eq!(ch.node_did, node.state.node_did);
    let auth = Authentication {
        did: alice.did.clone(),
        key_seq: 0,
        node_did: ch.node_did.clone(),
        audience: audience.into(),
        challenge: ch.challenge.clone().try_into().unwrap(),
    };
    let bytes = auth.to_bytes();

    // A signature by the wrong key fails and does not burn the challenge.
    let wrong = composite().sign(&bytes, SigningContext::Session.as_bytes()).unwrap();
    let e = m
        .authenticate(pb::AuthenticateRequest { authentication: bytes.clone(), signature: wrong })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "SESSION_BAD_SIGNATURE");
    // Wrong context.
    let wrong_ctx = alice.key.sign(&bytes, SigningContext::Envelope.as_bytes()).unwrap();
    let e = m
        .authenticate(pb::AuthenticateRequest {
            authentication: bytes.clone(),
            signature: wrong_ctx,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "SESSION_BAD_SIGNATURE");
    let e = m
        .authenticate(pb::AuthenticateRequest {
            authentication: bytes[..10].to_vec(),
            signature: vec![1],
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "SESSION_MALFORMED");

    let sig = alice.key.sign(&bytes, SigningContext::Session.as_bytes()).unwrap();
    let ok = m
        .authenticate(pb::AuthenticateRequest {
            authentication: bytes.clone(),
            signature: sig.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.did, alice.did);
    let (token, tsig) = split_session_token(&ok.session_token).unwrap();
    let t = SessionToken::parse(&token).unwrap();
    assert_eq!(t.subject, alice.did);
    assert_eq!(t.audience, audience);
    assert_eq!(t.issuer, node.state.node_did);
    assert_eq!(t.expires_at, ok.expires_at_unix_ms);
    node.state
        .node_key
        .public_key()
        .verify(&token, SigningContext::Session.as_bytes(), &tsig)
        .unwrap();

    // Single use.
    let e = m
        .authenticate(pb::AuthenticateRequest { authentication: bytes, signature: sig })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "SESSION_CHALLENGE_UNKNOWN");

    let e = m
        .create_challenge(pb::CreateChallengeRequest {
            did: "did:web:x".into(),
            audience: audience.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "DID_METHOD_NOT_SUPPORTED");
    let e = m
        .create_challenge(pb::CreateChallengeRequest {
            did: alice.did.clone(),
            audience: "a b".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "FIELD_INVALID");
    assert_eq!(node.log_size().await, size);
}
