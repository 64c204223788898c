//! Trust with the SDK against a real in-process node: the co-signed interaction receipt
//! (started by one agent, countersigned by the other after it checked the first signature),
//! verified by `atp-core` as a trust engine would, and the refusals on the way; then the whole
//! loop through the node's `TrustService`: anchors set by an admin, an endorsement, a co-signed
//! receipt and an incident submitted, a recompute, and `trust()`'s verified proof compared with
//! the node's own answer.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use crate::support::{ADMIN_TOKEN, options, start_node};
use atp::Agent;
use atp::core::envelope::KeyValidity;
use atp::core::evidence::{self, EvidenceVerifyContext, Outcome, Severity};

fn validity(agent: &Agent) -> KeyValidity {
    let state = agent.state();
    let log = agent.key_event_log();
    let event = &log[usize::try_from(state.key_sequence).unwrap()].event;
    KeyValidity {
        key: state.current_key.clone(),
        valid_from: atp::core::kel::parse_timestamp(&event.ts).unwrap(),
        valid_until: None,
    }
}

#[tokio::test]
async fn receipts_are_cosigned_and_verify_and_forgeries_are_refused() {
    let node = start_node().await;
    let home = tempfile::tempdir().unwrap();
    let alice = Agent::connect_with(options(&node, home.path()), "alice").await.unwrap();
    let bob = Agent::connect_with(options(&node, home.path()), "bob").await.unwrap();
    bob.rotate().await.unwrap();

    let half = alice.start_receipt(&bob.did(), "billing:invoice", Outcome::Success).await.unwrap();
    assert_eq!(half.body.subject_key_seq, Some(1), "the subject's current key from its log");
    assert!(half.subject_sig.is_none());
    let full = bob.countersign_receipt(half.clone()).await.unwrap();

    let (a, b) = (validity(&alice), validity(&bob));
    let (alice_did, bob_did) = (alice.did(), bob.did());
    let lookup = move |did: &str, seq: u64| match (did, seq) {
        (d, 0) if d == alice_did => Some(a.clone()),
        (d, 1) if d == bob_did => Some(b.clone()),
        _ => None,
    };
    let now = atp::core::kel::parse_timestamp(&full.body.created).unwrap() + 1000;
    let ctx = EvidenceVerifyContext { key_lookup: &lookup, now_ms: now, max_skew_ms: 60_000 };
    let verified = evidence::verify(&full, &ctx).unwrap();
    assert_eq!(verified.content_hash, full.body.content_hash().unwrap());
    // Without the subject's signature a receipt is not evidence.
    let err = evidence::verify(&half, &ctx).unwrap_err();
    assert_eq!(err.code(), "EVIDENCE_BAD_SIGNATURE", "{err}");

    // Bob refuses to countersign a receipt about someone else, or one whose issuer signature
    // does not verify.
    let carol = Agent::connect_with(options(&node, home.path()), "carol").await.unwrap();
    let err = carol.countersign_receipt(half.clone()).await.unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
    let mut forged = half;
    forged.body.capability = Some("billing:refund".into());
    let err = bob.countersign_receipt(forged).await.unwrap_err();
    assert!(err.code().starts_with("SIGNATURE"), "{}: {err}", err.code());
}

/// The node's own view of `did` in its last snapshot (what GetTrust answers, unsigned).
fn node_view(node: &crate::support::TestNode, did: &str) -> atp::grpc::v1::GetTrustResponse {
    atp_server::trust::get_trust(&node.state, did).expect("the node has a snapshot")
}

#[tokio::test]
async fn trust_end_to_end_through_the_node() {
    let node = start_node().await;
    let home = tempfile::tempdir().unwrap();
    let connect = |name: &'static str| Agent::connect_with(options(&node, home.path()), name);
    let admin = connect("admin").await.unwrap();
    let anchor = connect("anchor").await.unwrap();
    let bob = connect("bob").await.unwrap();
    let carol = connect("carol").await.unwrap();
    let mallory = connect("mallory").await.unwrap();
    let stranger = connect("stranger").await.unwrap();

    // Before any computation the node says so, with a stable reason.
    let err = anchor.trust(&bob.did()).await.unwrap_err();
    assert_eq!(err.code(), "TRUST_NOT_COMPUTED", "{err}");

    // Anchors are an admin operation: refused without the token, accepted with it.
    let anchors = vec![(anchor.did(), "the test's root of trust".to_owned())];
    let err = admin.set_trust_anchors(&anchors).await.unwrap_err();
    assert_eq!(err.code(), "AUTH_REQUIRED", "{err}");
    admin.set_bearer_token(Some(ADMIN_TOKEN));
    let revision = admin.set_trust_anchors(&anchors).await.unwrap();
    let (listed, listed_revision) = admin.trust_anchors().await.unwrap();
    assert_eq!((listed, listed_revision), (anchors.clone(), revision));

    // The anchor endorses Bob; submitting the same endorsement again is a duplicate.
    let endorsed = anchor.endorse(&bob.did(), None).await.unwrap();
    assert!(!endorsed.duplicate);
    assert!(endorsed.leaf_index.is_some(), "the evidence is logged");

    // Bob and Carol exchange a co-signed receipt; Bob submits it, Carol's resubmission is a
    // duplicate with the same content hash.
    let half = bob.start_receipt(&carol.did(), "travel.book", Outcome::Success).await.unwrap();
    let receipt = carol.countersign_receipt(half.clone()).await.unwrap();
    let submitted = bob.submit_evidence(&receipt).await.unwrap();
    assert!(!submitted.duplicate);
    let again = carol.submit_evidence(&receipt).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.content_hash, submitted.content_hash);
    assert_eq!(again.leaf_index, submitted.leaf_index);
    // The half-signed receipt is not evidence: the node refuses it and stores nothing.
    let err = bob.submit_evidence(&half).await.unwrap_err();
    assert_eq!(err.code(), "EVIDENCE_BAD_SIGNATURE", "{err}");

    // Carol reports an incident about Mallory.
    let incident = carol.report_incident(&mallory.did(), Severity::Low, None).await.unwrap();
    assert!(!incident.duplicate);
    assert_eq!(node.state.store.stats().await.unwrap().trust_evidence, 3);

    let snapshot = atp_server::trust::recompute_now(&node.state).await.expect("recompute");

    // trust(): a proof verified under the node's key, about the asked DID, agreeing exactly
    // with what the node computed.
    let observer = &stranger;
    let mut seen = Vec::new();
    for agent in [&anchor, &bob, &carol, &mallory, &stranger] {
        let did = agent.did();
        let trust = observer.trust(&did).await.unwrap();
        let view = node_view(&node, &did);
        assert_eq!(trust.proof.claims.subject, did);
        assert_eq!(u32::from(trust.level()), view.level, "{did}");
        // The proof publishes the score rounded to six decimals.
        assert_eq!(trust.score(), six_decimals(view.score), "{did}");
        assert_eq!(trust.proof.claims.evidence_count, view.evidence_count, "{did}");
        assert_eq!(trust.proof.claims.computed_at_ms, snapshot.computed_at_ms());
        assert_eq!(trust.level_name, view.level_name);
        assert_eq!(trust.gates, view.gates);
        seen.push(trust);
    }
    let [_, bob_t, carol_t, mallory_t, stranger_t] = <[_; 5]>::try_from(seen).unwrap();
    assert!(bob_t.score() > 0.0, "{bob_t:?}");
    assert_eq!((stranger_t.score(), stranger_t.level()), (0.0, 0));
    assert_eq!(stranger_t.level_name, "UNKNOWN");
    assert!(bob_t.score() > stranger_t.score());
    assert!(carol_t.score() > 0.0 && carol_t.score() < bob_t.score(), "{carol_t:?}");
    assert_eq!((mallory_t.score(), mallory_t.level()), (0.0, 0));
    assert_eq!(bob_t.proof.claims.evidence_count, 1, "the anchor's endorsement");
    assert_eq!(stranger_t.proof.claims.evidence_count, 0);
    // No credential evidence is derived by the node yet: level 2 and above stay gated.
    assert!(bob_t.level() <= 1, "{bob_t:?}");

    // The proof the SDK returns verifies again offline, and any edit breaks it.
    let node_key = node.state.node_key.public_key();
    let now_secs = now_ms() / 1000;
    let again = atp::core::trust_proof::verify_trust_proof(
        &bob_t.proof_json,
        &node.did,
        &node_key,
        now_secs,
    )
    .unwrap();
    assert_eq!(again, bob_t.proof);
    let mut edited = bob_t.proof_json.clone();
    edited["credentialSubject"]["trustScore"] = serde_json::json!(0.99);
    assert!(
        atp::core::trust_proof::verify_trust_proof(&edited, &node.did, &node_key, now_secs)
            .is_err()
    );

    // explain_trust names the anchor path: anchor -> Bob for Bob, anchor -> Bob -> Carol for
    // Carol; nothing for the stranger.
    let explained = observer.explain_trust(&bob.did()).await.unwrap();
    let hops = |e: &atp::grpc::v1::ExplainTrustResponse| -> Vec<Vec<(String, String)>> {
        e.paths
            .iter()
            .map(|p| p.edges.iter().map(|e| (e.from_did.clone(), e.to_did.clone())).collect())
            .collect()
    };
    assert_eq!(hops(&explained).first(), Some(&vec![(anchor.did(), bob.did())]));
    assert_eq!(six_decimals(explained.score), bob_t.score());
    let explained = observer.explain_trust(&carol.did()).await.unwrap();
    assert_eq!(
        hops(&explained).first(),
        Some(&vec![(anchor.did(), bob.did()), (bob.did(), carol.did())])
    );
    assert!(explained.paths[0].contribution > 0.0);
    assert_eq!(six_decimals(explained.score), carol_t.score());
    let explained = observer.explain_trust(&stranger.did()).await.unwrap();
    assert!(explained.paths.is_empty());
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn six_decimals(score: f64) -> f64 {
    (score * 1e6).round() / 1e6
}

#[tokio::test]
async fn open_reports_the_senders_verified_trust_level_cached_within_bounds() {
    let node = start_node().await;
    let home = tempfile::tempdir().unwrap();
    let connect = |name: &'static str| Agent::connect_with(options(&node, home.path()), name);
    let admin = connect("admin").await.unwrap();
    let anchor = connect("anchor").await.unwrap();
    let sender = connect("sender").await.unwrap();
    let cached = connect("cached").await.unwrap();
    // The same identity as `cached`, in another process, that never reuses a trust level.
    let mut fresh_options = options(&node, home.path());
    fresh_options.trust_cache_ttl = std::time::Duration::ZERO;
    let fresh = Agent::connect_with(fresh_options, "cached").await.unwrap();
    assert_eq!(fresh.did(), cached.did());

    // No snapshot yet: the envelope opens, and the level is unknown (None), not 0.
    let opened = cached.open(&sender.seal(&cached.did(), b"one").unwrap()).await.unwrap();
    assert_eq!((opened.payload.as_slice(), opened.sender_trust_level), (&b"one"[..], None));

    admin.set_bearer_token(Some(ADMIN_TOKEN));
    admin.set_trust_anchors(&[(anchor.did(), String::new())]).await.unwrap();
    atp_server::trust::recompute_now(&node.state).await.unwrap();
    // None was not cached: the computed level (nobody vouches for the sender yet) is reported.
    let opened = cached.open(&sender.seal(&cached.did(), b"two").unwrap()).await.unwrap();
    assert_eq!(opened.sender_trust_level, Some(0));
    assert_eq!(node_view(&node, &sender.did()).level, 0);

    // The anchor endorses the sender and the node recomputes: the level rises at the node.
    anchor.endorse(&sender.did(), None).await.unwrap();
    atp_server::trust::recompute_now(&node.state).await.unwrap();
    let now_level = node_view(&node, &sender.did()).level;
    assert!(now_level > 0, "an anchor's endorsement lifts the sender above UNKNOWN");
    let now_level = u8::try_from(now_level).unwrap();
    // Within its TTL the cached level is reused; without a cache the new one is seen.
    let opened = cached.open(&sender.seal(&cached.did(), b"three").unwrap()).await.unwrap();
    assert_eq!(opened.sender_trust_level, Some(0), "cached within the TTL");
    let opened = fresh.open(&sender.seal(&cached.did(), b"four").unwrap()).await.unwrap();
    assert_eq!(opened.sender_trust_level, Some(now_level));
    assert_eq!(fresh.trust(&sender.did()).await.unwrap().level(), now_level);
}
