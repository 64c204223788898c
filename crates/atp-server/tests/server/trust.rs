//! TrustService against a real node on 127.0.0.1:0 (temp SQLite store): signed evidence from
//! registered agents, the computation, GetTrust's signed proof verified offline with atp-core,
//! ExplainTrust, ListEvidence paging and filters, and hostile submissions that store nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use atp_core::evidence::{EvidenceBody, Outcome, Severity, SignedEvidence};
use atp_core::kel;
use atp_core::trust_proof::verify_trust_proof;
use atp_core::vc::DateTimeStamp;
use atp_crypto::{AlgorithmId, SigningKey};
use atp_grpc::v1 as pb;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use atp_grpc::v1::trust_service_client::TrustServiceClient;
use atp_server::ServerSettings;
use atp_store::StoreStats;
use tonic::transport::Channel;

struct Node {
    node: atp_test_node::TestNode,
    channel: Channel,
}

impl std::ops::Deref for Node {
    type Target = atp_test_node::TestNode;
    fn deref(&self) -> &Self::Target {
        &self.node
    }
}

fn key() -> SigningKey {
    SigningKey::generate(AlgorithmId::MlDsa65Ed25519).expect("key")
}

fn ts(ms: i64) -> String {
    DateTimeStamp::from_unix(ms.div_euclid(1000)).to_string()
}

impl Node {
    async fn start(recompute: Duration) -> Node {
        let settings = ServerSettings {
            checkpoint_interval: Duration::from_millis(50),
            trust_recompute_interval: recompute,
            ..ServerSettings::default()
        };
        let node = atp_test_node::TestNode::start_with(atp_test_node::NodeOptions {
            settings,
            checkpointer: false,
            ..atp_test_node::NodeOptions::default()
        })
        .await;
        let channel = node.channel().await;
        Node { node, channel }
    }

    fn trust(&self) -> TrustServiceClient<Channel> {
        TrustServiceClient::new(self.channel.clone())
    }

    async fn stats(&self) -> StoreStats {
        self.state.store.stats().await.expect("stats")
    }

    /// A new agent with its inception registered at the node.
    async fn agent(&self) -> Agent {
        let k = key();
        let next = key();
        let icp =
            kel::incept(&k, next.public_key_ref(), vec![], "2026-01-01T00:00:00Z").expect("incept");
        let did = format!("did:atp:{}", icp.event.scid().expect("scid"));
        IdentityServiceClient::new(self.channel.clone())
            .submit_event(pb::SubmitEventRequest {
                signed_event_json: icp.canonical_bytes().expect("json"),
            })
            .await
            .expect("inception accepted");
        let state = kel::verify_log(std::slice::from_ref(&icp)).expect("log");
        Agent { did, key: k, next, state }
    }

    async fn submit(
        &self,
        e: &SignedEvidence,
    ) -> Result<pb::SubmitEvidenceResponse, tonic::Status> {
        self.submit_bytes(e.to_json().expect("json").into_bytes()).await
    }

    async fn submit_bytes(
        &self,
        json: Vec<u8>,
    ) -> Result<pb::SubmitEvidenceResponse, tonic::Status> {
        self.trust()
            .submit_evidence(pb::SubmitEvidenceRequest { evidence_json: json })
            .await
            .map(|r| r.into_inner())
    }
}

struct Agent {
    did: String,
    key: SigningKey,
    next: SigningKey,
    state: kel::KelState,
}

fn reason(s: &tonic::Status) -> String {
    atp_grpc::status::error_info(s).map(|i| i.reason).unwrap_or_default()
}

fn now_ms(node: &Node) -> i64 {
    node.state.now_ms()
}

fn endorse(from: &Agent, to: &Agent, created: &str) -> SignedEvidence {
    EvidenceBody::endorsement(&from.did, 0, &to.did, created, None).sign(&from.key).expect("sign")
}

#[tokio::test]
async fn trust_service_end_to_end() {
    let node = Node::start(Duration::ZERO).await;
    let created = ts(now_ms(&node));
    let anchor = node.agent().await;
    let bob = node.agent().await;
    let carol = node.agent().await;
    let mallory = node.agent().await;
    let eve = node.agent().await;

    // Before the first computation, reads say so.
    let s = node.trust().get_trust(pb::GetTrustRequest { did: bob.did.clone() }).await.unwrap_err();
    assert_eq!((s.code(), reason(&s).as_str()), (tonic::Code::Unavailable, "TRUST_NOT_COMPUTED"));
    let s = node
        .trust()
        .explain_trust(pb::ExplainTrustRequest { did: bob.did.clone(), max_paths: 0 })
        .await
        .unwrap_err();
    assert_eq!(reason(&s), "TRUST_NOT_COMPUTED");

    node.state.store.set_trust_anchors(vec![anchor.did.clone()]).await.expect("anchors");

    // The anchor endorses Bob; Bob and Carol co-sign a successful receipt; Mallory (no path
    // from the anchor) endorses Eve; Carol reports Mallory.
    let a_b = endorse(&anchor, &bob, &created);
    let first = node.submit(&a_b).await.expect("endorsement accepted");
    assert!(!first.duplicate);
    assert_eq!(first.content_hash, a_b.body.content_hash().unwrap().to_vec());
    let receipt = EvidenceBody::receipt(
        &bob.did,
        0,
        &carol.did,
        0,
        &created,
        "travel.book",
        Outcome::Success,
    )
    .sign(&bob.key)
    .unwrap()
    .countersign(&carol.key)
    .unwrap();
    node.submit(&receipt).await.expect("receipt accepted");
    node.submit(&endorse(&mallory, &eve, &created)).await.expect("sybil endorsement accepted");
    let incident =
        EvidenceBody::incident(&carol.did, 0, &mallory.did, &created, Severity::Low, None)
            .sign(&carol.key)
            .unwrap();
    node.submit(&incident).await.expect("incident accepted");

    // The receipt's leaf is an `evidence` entry over the content hash.
    let entries = node.state.store.get_entries(first.log_receipt.as_ref().unwrap().leaf_index, 1);
    let entry = &entries.await.unwrap()[0];
    assert_eq!(entry.kind, atp_store::LeafKind::Evidence);
    assert_eq!(entry.data_hash.to_vec(), first.content_hash);
    assert_eq!(entry.leaf_hash.to_vec(), first.log_receipt.as_ref().unwrap().leaf_hash);

    // --- Hostile submissions: precise reasons, nothing stored. -----------------------------
    let before = node.stats().await;
    let dup = node.submit(&endorse(&anchor, &bob, &created)).await.expect("duplicate is ok");
    assert!(dup.duplicate);
    assert_eq!(dup.log_receipt, first.log_receipt);
    assert_eq!(dup.content_hash, first.content_hash);

    let mut bad_sig = endorse(&carol, &bob, &created);
    let other = endorse(&carol, &eve, &created);
    bad_sig.sig = other.sig.clone();
    let self_body = EvidenceBody::endorsement(&bob.did, 0, &bob.did, &created, None);
    let self_evidence =
        SignedEvidence { body: self_body, sig: other.sig.clone(), subject_sig: None };
    let unsigned_receipt =
        EvidenceBody::receipt(&bob.did, 0, &carol.did, 0, &created, "x", Outcome::Success)
            .sign(&bob.key)
            .unwrap();
    // A well-formed did:atp whose log this node does not hold.
    let stranger = key();
    let stranger_icp =
        kel::incept(&stranger, key().public_key_ref(), vec![], "2026-01-01T00:00:00Z").unwrap();
    let stranger_did = format!("did:atp:{}", stranger_icp.event.scid().unwrap());
    let unknown = EvidenceBody::endorsement(&stranger_did, 0, &bob.did, &created, None)
        .sign(&stranger)
        .unwrap();
    let wrong_seq = EvidenceBody::endorsement(&carol.did, 3, &bob.did, &created, None)
        .sign(&carol.key)
        .unwrap();
    let future = endorse(&carol, &bob, &ts(now_ms(&node) + 3_600_000));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (bad_sig.to_json().unwrap().into_bytes(), "EVIDENCE_BAD_SIGNATURE"),
        (self_evidence.to_json().unwrap().into_bytes(), "EVIDENCE_SELF"),
        (unsigned_receipt.to_json().unwrap().into_bytes(), "EVIDENCE_BAD_SIGNATURE"),
        (unknown.to_json().unwrap().into_bytes(), "EVIDENCE_UNKNOWN_SIGNER"),
        (wrong_seq.to_json().unwrap().into_bytes(), "EVIDENCE_UNKNOWN_SIGNER"),
        (future.to_json().unwrap().into_bytes(), "EVIDENCE_NOT_YET_VALID"),
        (b"{\"body\":1}".to_vec(), "EVIDENCE_MALFORMED"),
        (b"not json".to_vec(), "EVIDENCE_MALFORMED"),
        (vec![b' '; 40 * 1024], "EVIDENCE_TOO_LARGE"),
    ];
    for (json, want) in cases {
        let s = node.submit_bytes(json).await.unwrap_err();
        assert_eq!(s.code(), tonic::Code::InvalidArgument, "{want}: {s:?}");
        assert_eq!(reason(&s), want, "{s:?}");
    }

    // A deactivated signer: refused for evidence created after its deactivation.
    let dea = kel::deactivate(&eve.state, &eve.next, &ts(now_ms(&node) - 60_000)).unwrap();
    IdentityServiceClient::new(node.channel.clone())
        .submit_event(pb::SubmitEventRequest { signed_event_json: dea.canonical_bytes().unwrap() })
        .await
        .expect("deactivation accepted");
    let after_dea = node.stats().await;
    assert_eq!(after_dea.log_size, before.log_size + 1, "only the deactivation was logged");
    let s = node.submit(&endorse(&eve, &carol, &created)).await.unwrap_err();
    assert_eq!(reason(&s), "EVIDENCE_SIGNER_DEACTIVATED");
    let stats = node.stats().await;
    assert_eq!((stats.log_size, stats.trust_evidence), (after_dea.log_size, before.trust_evidence));
    assert_eq!(before.trust_evidence, 4);

    // --- The computation and the reads. ----------------------------------------------------
    let snapshot = atp_server::trust::recompute_now(&node.state).await.expect("recompute");
    assert!(snapshot.node_count() >= 5);
    let get = |did: String| {
        let mut client = node.trust();
        async move { client.get_trust(pb::GetTrustRequest { did }).await.expect("get").into_inner() }
    };
    let bob_trust = get(bob.did.clone()).await;
    let carol_trust = get(carol.did.clone()).await;
    let eve_trust = get(eve.did.clone()).await;
    let mallory_trust = get(mallory.did.clone()).await;
    let anchor_trust = get(anchor.did.clone()).await;
    for t in [&bob_trust, &carol_trust, &eve_trust, &mallory_trust, &anchor_trust] {
        assert!((0.0..=1.0).contains(&t.score), "{t:?}");
        assert!(t.level <= 4);
        assert_eq!(t.computed_at_unix_ms, snapshot.computed_at_ms());
    }
    // Anchor-endorsed Bob is above everyone without a path from the anchor.
    assert!(bob_trust.score > 0.0, "{bob_trust:?}");
    assert!(bob_trust.score > eve_trust.score && bob_trust.score > mallory_trust.score);
    assert!(carol_trust.score > 0.0 && carol_trust.score < bob_trust.score, "{carol_trust:?}");
    assert_eq!((eve_trust.score, eve_trust.level), (0.0, 0));
    assert_eq!((mallory_trust.score, mallory_trust.level), (0.0, 0));
    assert!(eve_trust.gates.contains(&"DEACTIVATED".to_owned()), "{eve_trust:?}");
    assert_eq!(bob_trust.evidence_count, 1);
    // No credential evidence is derived yet: level 2 and above stay gated.
    assert!(bob_trust.level <= 1, "{bob_trust:?}");
    assert_eq!(bob_trust.level_name, atp_trust::level_name(bob_trust.level as u8));

    // The proof verifies offline under the node's key, and fails after any edit or expiry.
    let proof: serde_json::Value = serde_json::from_slice(&bob_trust.trust_proof_json).unwrap();
    let node_pk = node.state.node_key.public_key();
    let now_secs = now_ms(&node) / 1000;
    let verified =
        verify_trust_proof(&proof, &node.state.node_did, &node_pk, now_secs).expect("verifies");
    assert_eq!(verified.claims.subject, bob.did);
    assert_eq!(verified.claims.level, bob_trust.level as u8);
    // The reported score is the signed one, to the bit.
    assert_eq!(verified.claims.score.to_bits(), bob_trust.score.to_bits());
    assert_eq!(bob_trust.score, atp_core::trust_proof::published_score(bob_trust.score));
    assert_eq!(verified.claims.evidence_count, 1);
    assert_eq!(verified.valid_until * 1000, bob_trust.valid_until_unix_ms);
    let mut edited = proof.clone();
    edited["credentialSubject"]["trustScore"] = serde_json::json!(0.99);
    assert!(verify_trust_proof(&edited, &node.state.node_did, &node_pk, now_secs).is_err());
    assert!(
        verify_trust_proof(&proof, &node.state.node_did, &node_pk, verified.valid_until + 1)
            .is_err()
    );
    assert!(verify_trust_proof(&proof, &bob.did, &node_pk, now_secs).is_err());

    // ExplainTrust names the anchor path.
    let explained = node
        .trust()
        .explain_trust(pb::ExplainTrustRequest { did: carol.did.clone(), max_paths: 5 })
        .await
        .expect("explain")
        .into_inner();
    let path = explained.paths.first().expect("a path from the anchor");
    let hops: Vec<(&str, &str)> =
        path.edges.iter().map(|e| (e.from_did.as_str(), e.to_did.as_str())).collect();
    assert_eq!(
        hops,
        vec![(anchor.did.as_str(), bob.did.as_str()), (bob.did.as_str(), carol.did.as_str())]
    );
    assert!(path.contribution > 0.0);
    assert!(path.edges.iter().all(|e| e.weight > 0.0 && e.weight <= 1.0));
    assert_eq!(explained.score, carol_trust.score);
    let lonely = node
        .trust()
        .explain_trust(pb::ExplainTrustRequest { did: eve.did.clone(), max_paths: 0 })
        .await
        .expect("explain")
        .into_inner();
    assert!(lonely.paths.is_empty());

    // Bad DIDs.
    let s =
        node.trust().get_trust(pb::GetTrustRequest { did: "not a did".into() }).await.unwrap_err();
    assert_eq!(reason(&s), "DID_INVALID");

    // --- ListEvidence. ---------------------------------------------------------------------
    let list = |req: pb::ListEvidenceRequest| {
        let mut client = node.trust();
        async move { client.list_evidence(req).await.map(|r| r.into_inner()) }
    };
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(pb::ListEvidenceRequest {
            page_size: 3,
            page_token: token.clone(),
            ..Default::default()
        })
        .await
        .expect("page");
        assert!(page.evidence.len() <= 3);
        all.extend(page.evidence);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(all.len(), 4);
    let indices: Vec<u64> =
        all.iter().map(|e| e.log_receipt.as_ref().unwrap().leaf_index).collect();
    assert!(indices.windows(2).all(|w| w[0] > w[1]), "newest first: {indices:?}");
    // Each record is the evidence as submitted, verifiable by the client.
    let first_record = all.iter().find(|e| e.content_hash == first.content_hash).unwrap();
    let parsed = SignedEvidence::from_json(&first_record.evidence_json).unwrap();
    assert_eq!(parsed, a_b);
    assert_eq!(first_record.kind, pb::EvidenceKind::Endorsement as i32);
    assert_eq!(
        (first_record.issuer.as_str(), first_record.subject.as_str()),
        (anchor.did.as_str(), bob.did.as_str())
    );

    let about_carol =
        list(pb::ListEvidenceRequest { subject: carol.did.clone(), ..Default::default() })
            .await
            .unwrap();
    assert_eq!(about_carol.evidence.len(), 1);
    assert_eq!(about_carol.evidence[0].kind, pb::EvidenceKind::InteractionReceipt as i32);
    let by_carol_incidents = list(pb::ListEvidenceRequest {
        issuer: carol.did.clone(),
        kind: pb::EvidenceKind::IncidentReport as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(by_carol_incidents.evidence.len(), 1);
    assert_eq!(by_carol_incidents.evidence[0].subject, mallory.did);
    let none = list(pb::ListEvidenceRequest {
        issuer: anchor.did.clone(),
        kind: pb::EvidenceKind::IncidentReport as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(none.evidence.is_empty() && none.next_page_token.is_empty());
    for (req, want) in [
        (
            pb::ListEvidenceRequest { page_token: "garbage".into(), ..Default::default() },
            "PAGE_TOKEN_INVALID",
        ),
        (pb::ListEvidenceRequest { subject: "nope".into(), ..Default::default() }, "DID_INVALID"),
        (pb::ListEvidenceRequest { kind: 99, ..Default::default() }, "FIELD_INVALID"),
    ] {
        let s = list(req).await.unwrap_err();
        assert_eq!(reason(&s), want);
    }
}

/// The scheduled job computes on its own: reads start to succeed without `recompute_now`.
#[tokio::test]
async fn scheduled_recompute_serves_reads() {
    let node = Node::start(Duration::from_millis(50)).await;
    let anchor = node.agent().await;
    let bob = node.agent().await;
    node.state.store.set_trust_anchors(vec![anchor.did.clone()]).await.expect("anchors");
    node.submit(&endorse(&anchor, &bob, &ts(now_ms(&node)))).await.expect("accepted");
    // Bounded polling (no timing claim): the job must pick the evidence up.
    let mut seen = None;
    for _ in 0..400 {
        if let Ok(r) = node.trust().get_trust(pb::GetTrustRequest { did: bob.did.clone() }).await {
            let r = r.into_inner();
            if r.score > 0.0 {
                seen = Some(r);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let r = seen.expect("the scheduled job computed a snapshot with the new evidence");
    assert_eq!(r.evidence_count, 1);
}

/// A DID whose key event log forked keeps no trust: level 0, score 0, gate KEL_FORK, from the
/// next computation on.
#[tokio::test]
async fn a_kel_fork_zeroes_trust_with_the_kel_fork_gate() {
    let node = Node::start(Duration::ZERO).await;
    let created = ts(now_ms(&node));
    let anchor = node.agent().await;
    let bob = node.agent().await;
    node.state.store.set_trust_anchors(vec![anchor.did.clone()]).await.expect("anchors");
    node.submit(&endorse(&anchor, &bob, &created)).await.expect("endorsement accepted");
    let trust_of_bob = async || {
        atp_server::trust::recompute_now(&node.state).await.expect("recompute");
        node.trust()
            .get_trust(pb::GetTrustRequest { did: bob.did.clone() })
            .await
            .expect("GetTrust")
            .into_inner()
    };
    let before = trust_of_bob().await;
    assert!(before.score > 0.0, "{before:?}");
    assert!(!before.gates.contains(&"KEL_FORK".to_owned()), "{before:?}");

    // Bob's committed next key signs two different rotations for sequence 1.
    let rotation =
        || kel::rotate(&bob.state, &bob.next, key().public_key_ref(), None, &created).expect("rot");
    let mut identity = IdentityServiceClient::new(node.channel.clone());
    let submit = |e: &kel::SignedEvent| pb::SubmitEventRequest {
        signed_event_json: e.canonical_bytes().expect("json"),
    };
    identity.submit_event(submit(&rotation())).await.expect("the first rotation is accepted");
    let fork = identity.submit_event(submit(&rotation())).await.expect_err("a fork");
    assert_eq!(atp_test_node::reason(&fork), "KEL_FORK");

    let after = trust_of_bob().await;
    assert_eq!((after.score, after.level), (0.0, 0), "{after:?}");
    assert!(after.gates.contains(&"KEL_FORK".to_owned()), "{after:?}");
}

/// A node of a cluster on `store` (a fresh one for the first node), competing for the
/// singleton leases as `holder`, on a clock the test moves. Its schedule runs one round at
/// start and then waits an hour, so the test drives the rounds.
async fn cluster_node(
    holder: &str,
    store: Option<std::sync::Arc<dyn atp_store::Store>>,
    clock: std::sync::Arc<std::sync::atomic::AtomicI64>,
) -> Node {
    let settings = ServerSettings {
        checkpoint_interval: Duration::from_millis(50),
        trust_recompute_interval: Duration::from_secs(3600),
        singleton_lease: Some(atp_server::SingletonLease {
            holder: holder.into(),
            ttl: Duration::from_secs(5),
        }),
        replay_through_store: true,
        kel_coherence: atp_server::KelCoherence::HeadCheck,
        ..ServerSettings::default()
    };
    let node = atp_test_node::TestNode::start_with(atp_test_node::NodeOptions {
        settings,
        checkpointer: false,
        store,
        clock: Some(std::sync::Arc::new(move || clock.load(std::sync::atomic::Ordering::SeqCst))),
        ..atp_test_node::NodeOptions::default()
    })
    .await;
    // The first round, scheduled at start, has run once a snapshot is served (bounded wait).
    for _ in 0..400 {
        if node.state.trust.snapshot().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(node.state.trust.snapshot().is_some(), "{holder}: no first round");
    let channel = node.channel().await;
    Node { node, channel }
}

/// A cluster on one store computes trust on one node: the holder of the trust lease computes
/// and stores the snapshot, another node loads it and answers the same without computing; a
/// stored snapshot that does not parse is never served; when the holder gives the lease up,
/// the other node takes over; and a node whose newest snapshot is too old computes its own.
#[tokio::test]
async fn a_cluster_computes_trust_on_one_node_and_the_others_load_it() {
    use atp_server::trust_job::{Round, TRUST_LEASE, release, round};
    use std::sync::atomic::{AtomicI64, Ordering};
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let clock_a = std::sync::Arc::new(AtomicI64::new(start));
    let clock_b = std::sync::Arc::new(AtomicI64::new(start));
    let a = cluster_node("node-a", None, clock_a.clone()).await;
    let b = cluster_node("node-b", Some(a.state.store.clone()), clock_b.clone()).await;
    let store = a.state.store.clone();
    let first = store.trust_snapshot_revision().await.expect("read").expect("stored by a");
    assert_eq!(first.0, 1, "a took the free lease and stored the first snapshot");
    let served_at = |n: &Node| n.state.trust.snapshot().expect("snapshot").computed_at_ms();
    assert_eq!(served_at(&b), served_at(&a), "b loaded a's snapshot instead of computing");

    let anchor = a.agent().await;
    let bob = a.agent().await;
    store.set_trust_anchors(vec![anchor.did.clone()]).await.expect("anchors");
    a.submit(&endorse(&anchor, &bob, &ts(start))).await.expect("accepted");
    // b holds no lease: with nothing new stored, it keeps what it serves.
    assert_eq!(round(&b.state).await.expect("round"), Round::Unchanged);
    assert_eq!(b.state.trust.snapshot().expect("snapshot").get(&bob.did).score, 0.0);

    clock_a.fetch_add(1_000, Ordering::SeqCst);
    clock_b.fetch_add(1_000, Ordering::SeqCst);
    assert_eq!(round(&a.state).await.expect("round"), Round::Computed);
    assert_eq!(round(&b.state).await.expect("round"), Round::Loaded);
    let (on_a, on_b) = (a.state.trust.snapshot().unwrap(), b.state.trust.snapshot().unwrap());
    assert!(on_a.get(&bob.did).score > 0.0);
    assert_eq!(on_b.get(&bob.did), on_a.get(&bob.did));
    assert_eq!(on_b.computed_at_ms(), on_a.computed_at_ms());
    let answer = |n: &Node| {
        let did = bob.did.clone();
        let mut client = n.trust();
        async move {
            let r = client.get_trust(pb::GetTrustRequest { did }).await.expect("GetTrust");
            let r = r.into_inner();
            (r.score, r.level, r.evidence_count)
        }
    };
    assert_eq!(answer(&b).await, answer(&a).await);

    // Bytes that do not parse, stored under a's lease, are never served.
    let held = store
        .acquire_lease(TRUST_LEASE.into(), "node-a".into(), 3_600_000)
        .await
        .expect("lease")
        .expect("a holds it");
    let at = start + 2_000;
    store.put_trust_snapshot_fenced(at, vec![0x41; 64], held).await.expect("stored");
    assert_eq!(round(&b.state).await.expect("round"), Round::Unchanged);
    assert_eq!(b.state.trust.snapshot().unwrap().computed_at_ms(), on_a.computed_at_ms());

    // a gives the lease up (as on shutdown): b takes over at its next round.
    release(&a.state).await.expect("release");
    clock_b.fetch_add(1_000, Ordering::SeqCst);
    assert_eq!(round(&b.state).await.expect("round"), Round::Computed);
    let (revision, _) = store.trust_snapshot_revision().await.unwrap().unwrap();
    assert_eq!(revision, 4, "a's two, the damaged one, then b's");
    assert_eq!(round(&a.state).await.expect("round"), Round::Loaded);
    assert_eq!(served_at(&a), served_at(&b));

    // Nothing newer is stored for more than three intervals (by a's clock): a computes its own.
    clock_a.fetch_add(3 * 3_600_000 + 5_000, Ordering::SeqCst);
    assert_eq!(round(&a.state).await.expect("round"), Round::ComputedLocally);
    assert!(served_at(&a) > served_at(&b));
    assert_eq!(store.trust_snapshot_revision().await.unwrap().unwrap().0, 4, "a stored nothing");
}
