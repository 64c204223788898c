//! A hostile node: its answers are wrong in the ways a compromised or buggy node could be
//! wrong (a key of the wrong size, another DID's log, a checkpoint signed by someone else, an
//! inclusion proof that does not match, a trust proof edited, signed by someone else, about
//! another DID or expired). The SDK must refuse each with `NODE_MISBEHAVED`, never trust it and
//! never panic. Then a node that lies about its log: it shrinks it, replays an older checkpoint
//! to a restarted client, answers a wrong consistency proof, and shows two clients two forks;
//! each lie yields evidence that verifies offline.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use atp::Agent;
use atp::core::checkpoint::{Checkpoint, sign_note};
use atp::core::kel::{self, SignedEvent};
use atp::core::log_evidence::{LogEvidence, Misbehaviour};
use atp::core::tlog;
use atp::core::trust_proof::{TrustClaims, issue_trust_proof};
use atp::crypto::{AlgorithmId, SigningKey};
use atp::grpc::v1;
use tonic::{Request, Response, Status};

/// What the hostile node answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lie {
    /// The peer's log with its ML-DSA key cut short.
    ShortKey,
    /// A valid log, but of another DID.
    OtherDidsLog,
    /// A checkpoint signed by a key that is not the node's.
    ForeignCheckpoint,
    /// A correctly signed checkpoint, and inclusion proofs that do not lead to its root.
    WrongProof,
    /// Inclusion proof hashes of 31 bytes.
    ShortProofHash,
    /// No lie: a trust proof correctly signed by the node (the control).
    HonestTrustProof,
    /// A trust proof signed by the node, with its score raised afterwards.
    EditedTrustProof,
    /// A trust proof signed by a key that is not the node's.
    ForeignTrustProof,
    /// A correctly signed trust proof about another DID.
    OtherSubjectTrustProof,
    /// A correctly signed trust proof that expired a minute ago.
    ExpiredTrustProof,
    /// A trust proof that is not JSON.
    GarbageTrustProof,
    /// Checkpoints and consistency proofs of [`Hostile::view`], a real Merkle tree.
    Log,
}

/// The log the hostile node shows under [`Lie::Log`]: the first `size` of `leaves`, and a
/// consistency proof computed over `leaves` (or one with a flipped byte).
#[derive(Clone, Default)]
struct LogView {
    leaves: Vec<[u8; 32]>,
    size: u64,
    bad_proof: bool,
    /// Witnesses (name, key) whose cosignatures the node attaches to its checkpoint.
    cosigners: Vec<(String, Arc<SigningKey>)>,
}

/// The score the hostile node signs (and, edited, claims).
const SIGNED_SCORE: f64 = 0.25;

struct Hostile {
    lie: Mutex<Lie>,
    node_key: SigningKey,
    node_kel: Vec<SignedEvent>,
    node_did: String,
    peer: (String, Vec<SignedEvent>),
    other: Vec<SignedEvent>,
    view: Mutex<LogView>,
}

fn incept() -> (String, Vec<SignedEvent>, SigningKey) {
    let k = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let n = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    let icp = kel::incept(&k, n.public_key_ref(), vec![], "2026-01-01T00:00:00Z").unwrap();
    (format!("did:atp:{}", icp.event.scid().unwrap()), vec![icp], k)
}

fn key_events(events: &[SignedEvent]) -> Vec<v1::KeyEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| v1::KeyEvent {
            sequence: i as u64,
            signed_event_json: e.canonical_bytes().unwrap(),
            event_digest: e.digest().unwrap(),
            log_receipt: None,
        })
        .collect()
}

/// The services, sharing one hostile state.
#[derive(Clone)]
struct Svc(Arc<Hostile>);

impl std::ops::Deref for Svc {
    type Target = Hostile;
    fn deref(&self) -> &Hostile {
        &self.0
    }
}

const ORIGIN: &str = "hostile.example/log";

#[tonic::async_trait]
impl v1::identity_service_server::IdentityService for Svc {
    async fn submit_event(
        &self,
        r: Request<v1::SubmitEventRequest>,
    ) -> Result<Response<v1::SubmitEventResponse>, Status> {
        let e = SignedEvent::from_json(&r.into_inner().signed_event_json).unwrap();
        let did =
            e.event.d.clone().unwrap_or_else(|| format!("did:atp:{}", e.event.scid().unwrap()));
        Ok(Response::new(v1::SubmitEventResponse {
            did,
            sequence: e.event.s,
            ..Default::default()
        }))
    }
    async fn resolve(
        &self,
        _: Request<v1::ResolveRequest>,
    ) -> Result<Response<v1::ResolveResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn get_key_event_log(
        &self,
        r: Request<v1::GetKeyEventLogRequest>,
    ) -> Result<Response<v1::GetKeyEventLogResponse>, Status> {
        let did = r.into_inner().did;
        let lie = *self.lie.lock().unwrap();
        let events = if did == self.node_did {
            key_events(&self.node_kel)
        } else if did == self.peer.0 {
            match lie {
                Lie::OtherDidsLog => key_events(&self.other),
                _ => {
                    let mut events = key_events(&self.peer.1);
                    if lie == Lie::ShortKey {
                        let text = String::from_utf8(events[0].signed_event_json.clone()).unwrap();
                        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                        let mk = v["event"]["k"]["mldsa"].as_str().unwrap().to_owned();
                        v["event"]["k"]["mldsa"] = mk[..mk.len() - 40].into();
                        events[0].signed_event_json = v.to_string().into_bytes();
                    }
                    events
                }
            }
        } else {
            return Err(atp::grpc::status::error(
                tonic::Code::NotFound,
                "DID_NOT_FOUND",
                "unknown",
                &[],
            ));
        };
        Ok(Response::new(v1::GetKeyEventLogResponse {
            did,
            event_count: events.len() as u64,
            events,
        }))
    }
    async fn list_identities(
        &self,
        _: Request<v1::ListIdentitiesRequest>,
    ) -> Result<Response<v1::ListIdentitiesResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
}

#[tonic::async_trait]
impl v1::admin_service_server::AdminService for Svc {
    async fn get_node_info(
        &self,
        _: Request<v1::GetNodeInfoRequest>,
    ) -> Result<Response<v1::GetNodeInfoResponse>, Status> {
        Ok(Response::new(v1::GetNodeInfoResponse {
            node_did: self.node_did.clone(),
            log_origin: ORIGIN.into(),
            ..Default::default()
        }))
    }
    async fn set_trust_anchors(
        &self,
        _: Request<v1::SetTrustAnchorsRequest>,
    ) -> Result<Response<v1::SetTrustAnchorsResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn list_trust_anchors(
        &self,
        _: Request<v1::ListTrustAnchorsRequest>,
    ) -> Result<Response<v1::ListTrustAnchorsResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn list_role_bindings(
        &self,
        _: Request<v1::ListRoleBindingsRequest>,
    ) -> Result<Response<v1::ListRoleBindingsResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn erase_subject(
        &self,
        _: Request<v1::EraseSubjectRequest>,
    ) -> Result<Response<v1::EraseSubjectResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn recompute_trust(
        &self,
        _: Request<v1::RecomputeTrustRequest>,
    ) -> Result<Response<v1::RecomputeTrustResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn get_trust_config(
        &self,
        _: Request<v1::GetTrustConfigRequest>,
    ) -> Result<Response<v1::GetTrustConfigResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn add_role_binding(
        &self,
        _: Request<v1::AddRoleBindingRequest>,
    ) -> Result<Response<v1::AddRoleBindingResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn remove_role_binding(
        &self,
        _: Request<v1::RemoveRoleBindingRequest>,
    ) -> Result<Response<v1::RemoveRoleBindingResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
}

#[tonic::async_trait]
impl v1::log_service_server::LogService for Svc {
    async fn get_checkpoint(
        &self,
        _: Request<v1::GetCheckpointRequest>,
    ) -> Result<Response<v1::GetCheckpointResponse>, Status> {
        let foreign;
        let signer = if *self.lie.lock().unwrap() == Lie::ForeignCheckpoint {
            foreign = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
            &foreign
        } else {
            &self.node_key
        };
        let (mldsa, ed) = signer.components().unwrap();
        let checkpoint = if *self.lie.lock().unwrap() == Lie::Log {
            let view = self.view.lock().unwrap();
            let size = usize::try_from(view.size).unwrap();
            Checkpoint::new(ORIGIN, view.size, tlog::root_from_leaf_hashes(&view.leaves[..size]))
        } else {
            Checkpoint::new(ORIGIN, 4, [7u8; 32])
        };
        let mut note = sign_note(&checkpoint, ORIGIN, ed, mldsa).unwrap();
        if *self.lie.lock().unwrap() == Lie::Log {
            for (name, key) in &self.view.lock().unwrap().cosigners {
                note.push_str(
                    &atp::core::witness::cosign(&checkpoint, name, 1_765_000_000, key).unwrap(),
                );
            }
        }
        Ok(Response::new(v1::GetCheckpointResponse { checkpoint_note: note.into_bytes() }))
    }
    async fn get_inclusion_proof(
        &self,
        r: Request<v1::GetInclusionProofRequest>,
    ) -> Result<Response<v1::GetInclusionProofResponse>, Status> {
        let r = r.into_inner();
        let Some(v1::get_inclusion_proof_request::Leaf::LeafHash(leaf_hash)) = r.leaf else {
            return Err(Status::invalid_argument("hostile"));
        };
        let len = if *self.lie.lock().unwrap() == Lie::ShortProofHash { 31 } else { 32 };
        Ok(Response::new(v1::GetInclusionProofResponse {
            leaf_index: 1,
            tree_size: r.tree_size,
            leaf_hash,
            inclusion_path: vec![vec![1u8; len], vec![2u8; 32]],
        }))
    }
    async fn get_consistency_proof(
        &self,
        r: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::GetConsistencyProofResponse>, Status> {
        let r = r.into_inner();
        let view = self.view.lock().unwrap().clone();
        let second = usize::try_from(r.second_tree_size).unwrap().min(view.leaves.len());
        let Ok(mut path) = tlog::consistency_proof(r.first_tree_size, &view.leaves[..second])
        else {
            return Err(Status::invalid_argument("hostile: sizes out of range"));
        };
        if view.bad_proof {
            path[0][0] ^= 1;
        }
        Ok(Response::new(v1::GetConsistencyProofResponse {
            first_tree_size: r.first_tree_size,
            second_tree_size: r.second_tree_size,
            consistency_path: path.iter().map(|h| h.to_vec()).collect(),
        }))
    }
    async fn get_entries(
        &self,
        _: Request<v1::GetEntriesRequest>,
    ) -> Result<Response<v1::GetEntriesResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
}

#[tonic::async_trait]
impl v1::trust_service_server::TrustService for Svc {
    async fn submit_evidence(
        &self,
        _: Request<v1::SubmitEvidenceRequest>,
    ) -> Result<Response<v1::SubmitEvidenceResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn get_trust(
        &self,
        r: Request<v1::GetTrustRequest>,
    ) -> Result<Response<v1::GetTrustResponse>, Status> {
        let did = r.into_inner().did;
        let lie = *self.lie.lock().unwrap();
        let subject =
            if lie == Lie::OtherSubjectTrustProof { self.peer.0.clone() } else { did.clone() };
        let claims = TrustClaims {
            subject,
            score: SIGNED_SCORE,
            level: 1,
            evidence_count: 2,
            computed_at_ms: now_ms() - 1000,
        };
        let foreign = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
        let signer = if lie == Lie::ForeignTrustProof { &foreign } else { &self.node_key };
        let now_secs = now_ms() / 1000;
        let (issued, ttl) =
            if lie == Lie::ExpiredTrustProof { (now_secs - 120, 60) } else { (now_secs, 300) };
        let mut proof = issue_trust_proof(&self.node_did, signer, &claims, issued, ttl).unwrap();
        if lie == Lie::EditedTrustProof {
            proof["credentialSubject"]["trustScore"] = serde_json::json!(0.99);
        }
        let trust_proof_json = if lie == Lie::GarbageTrustProof {
            b"not json".to_vec()
        } else {
            serde_json::to_vec(&proof).unwrap()
        };
        Ok(Response::new(v1::GetTrustResponse { did, trust_proof_json, ..Default::default() }))
    }
    async fn explain_trust(
        &self,
        _: Request<v1::ExplainTrustRequest>,
    ) -> Result<Response<v1::ExplainTrustResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
    async fn list_evidence(
        &self,
        _: Request<v1::ListEvidenceRequest>,
    ) -> Result<Response<v1::ListEvidenceResponse>, Status> {
        Err(Status::unimplemented("hostile"))
    }
}

/// Starts the hostile node on 127.0.0.1; returns its state and URL.
async fn start_hostile() -> (Arc<Hostile>, String, String, SigningKey) {
    let (node_did, node_kel, node_key) = incept();
    let (peer_did, peer_kel, peer_key) = incept();
    let (_, other, _) = incept();
    let hostile = Arc::new(Hostile {
        lie: Mutex::new(Lie::ShortKey),
        node_key,
        node_kel,
        node_did,
        peer: (peer_did.clone(), peer_kel),
        other,
        view: Mutex::new(LogView::default()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tonic::transport::Server::builder()
        .add_service(v1::identity_service_server::IdentityServiceServer::new(Svc(hostile.clone())))
        .add_service(v1::admin_service_server::AdminServiceServer::new(Svc(hostile.clone())))
        .add_service(v1::log_service_server::LogServiceServer::new(Svc(hostile.clone())))
        .add_service(v1::trust_service_server::TrustServiceServer::new(Svc(hostile.clone())))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    (hostile, url, peer_did, peer_key)
}

async fn client(url: &str, home: &std::path::Path) -> Agent {
    let mut opts = atp::AgentOptions::new(url);
    opts.home = Some(home.to_path_buf());
    Agent::connect_with(opts, "victim").await.unwrap()
}

#[tokio::test]
async fn hostile_node_answers_are_refused_as_node_misbehaved() {
    let (hostile, url, peer_did, peer_key) = start_hostile().await;
    let home = tempfile::tempdir().unwrap();
    let me = client(&url, home.path()).await;

    // An envelope genuinely from the peer, addressed to the victim.
    let env = atp::core::envelope::Envelope::new(
        &peer_did,
        0,
        vec![me.did()],
        now_ms(),
        now_ms() + 60_000,
        "text/plain",
        b"hi".to_vec(),
    )
    .unwrap();
    let wire = env.seal(&peer_key).unwrap().to_bytes().unwrap();

    let set = |lie| *hostile.lie.lock().unwrap() = lie;
    for lie in [Lie::ShortKey, Lie::OtherDidsLog] {
        set(lie);
        let err = me.resolve(&peer_did).await.unwrap_err();
        assert_eq!(err.code(), "NODE_MISBEHAVED", "{lie:?}: {err}");
        let err = me.open(&wire).await.unwrap_err();
        assert_eq!(err.code(), "NODE_MISBEHAVED", "{lie:?}: {err}");
    }
    let event = me.key_event_log()[0].clone();
    for lie in [Lie::ForeignCheckpoint, Lie::WrongProof, Lie::ShortProofHash] {
        set(lie);
        let err = me.verify_inclusion(&event).await.unwrap_err();
        assert_eq!(err.code(), "NODE_MISBEHAVED", "{lie:?}: {err}");
    }

    // Trust proofs: the control verifies under the node's key, every altered one is refused.
    set(Lie::HonestTrustProof);
    let trust = me.trust(&me.did()).await.unwrap();
    assert_eq!(
        (trust.score(), trust.level(), trust.proof.claims.evidence_count),
        (SIGNED_SCORE, 1, 2)
    );
    assert_eq!(trust.proof.claims.subject, me.did());
    for lie in [
        Lie::EditedTrustProof,
        Lie::ForeignTrustProof,
        Lie::OtherSubjectTrustProof,
        Lie::ExpiredTrustProof,
        Lie::GarbageTrustProof,
    ] {
        set(lie);
        let err = me.trust(&me.did()).await.unwrap_err();
        assert_eq!(err.code(), "NODE_MISBEHAVED", "{lie:?}: {err}");
    }
}

/// The evidence in a `LogInconsistent` error, after a round trip through its JSON file.
fn evidence_of(err: atp::Error) -> LogEvidence {
    assert_eq!(err.code(), "NODE_MISBEHAVED", "{err}");
    let atp::Error::LogInconsistent(evidence) = err else { panic!("not log evidence: {err}") };
    LogEvidence::from_json(&evidence.to_json().unwrap()).unwrap()
}

/// The tree size of the checkpoint kept in `home` for the agent `victim`.
fn kept_size(home: &std::path::Path) -> u64 {
    let dir = home.join("agents/victim/checkpoints");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "one kept checkpoint: {files:?}");
    let note = std::fs::read_to_string(&files[0]).unwrap();
    note.lines().nth(1).unwrap().parse().unwrap()
}

fn leaves(tag: u8, n: usize) -> Vec<[u8; 32]> {
    (0..n).map(|i| tlog::leaf_hash(&[tag, u8::try_from(i).unwrap()])).collect()
}

#[tokio::test]
async fn a_node_that_lies_about_its_log_is_caught_with_evidence_that_verifies_offline() {
    let (hostile, url, _, _) = start_hostile().await;
    *hostile.lie.lock().unwrap() = Lie::Log;
    // Fork B shares the first 6 leaves of A and differs after.
    let tree_a = leaves(0xA, 16);
    let mut tree_b = tree_a[..6].to_vec();
    tree_b.extend(leaves(0xB, 10));
    let show = |leaves: &[[u8; 32]], size: u64, bad_proof: bool| {
        *hostile.view.lock().unwrap() =
            LogView { leaves: leaves.to_vec(), size, bad_proof, cosigners: vec![] };
    };
    let (home1, home2, home3) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    show(&tree_a, 8, false);
    let one = client(&url, home1.path()).await;
    assert_eq!(one.verified_checkpoint().await.unwrap().size, 8);

    // Honest growth: the consistency proof from 8 to 12 verifies.
    show(&tree_a, 12, false);
    let (a12, a12_note) = one.verified_checkpoint_note().await.unwrap();
    assert_eq!(a12.size, 12);

    // The log shrinks.
    show(&tree_a, 10, false);
    let evidence = evidence_of(one.verified_checkpoint().await.unwrap_err());
    let (found, earlier, later) = evidence.verify().unwrap();
    assert_eq!(found, Misbehaviour::Unproven { smaller: 10, larger: 12, went_backwards: true });
    assert_eq!((earlier.size, later.size), (12, 10));
    assert_eq!(kept_size(home1.path()), 12, "a refused checkpoint is not kept");

    // A correct checkpoint with a wrong consistency proof: refused, and the proof is in the
    // evidence (it does not verify, which is why it proves nothing in the node's favour).
    show(&tree_a, 16, true);
    let evidence = evidence_of(one.verified_checkpoint().await.unwrap_err());
    assert!(evidence.consistency_path.is_some());
    let (found, ..) = evidence.verify().unwrap();
    assert_eq!(found, Misbehaviour::Unproven { smaller: 12, larger: 16, went_backwards: false });
    assert_eq!(kept_size(home1.path()), 12, "a refused checkpoint is not kept");
    // The same checkpoint with the right proof is accepted: the refusal was the proof's fault.
    show(&tree_a, 16, false);
    assert_eq!(one.verified_checkpoint().await.unwrap().size, 16);
    assert_eq!(kept_size(home1.path()), 16);
    show(&tree_a, 12, false);
    drop(one);

    // An older checkpoint replayed to a restarted client: its memory survived in its home.
    let one = client(&url, home1.path()).await;
    let evidence = evidence_of(one.verified_checkpoint().await.unwrap_err());
    assert_eq!(
        evidence.verify().unwrap().0,
        Misbehaviour::Unproven { smaller: 12, larger: 16, went_backwards: true }
    );
    drop(one);
    let fresh = tempfile::tempdir().unwrap();
    let one = client(&url, fresh.path()).await;
    assert_eq!(one.verified_checkpoint().await.unwrap(), a12, "a fresh client has no memory");

    // A split view: client two sees fork B at the same size. Gossip proves the fork offline.
    show(&tree_b, 12, false);
    let two = client(&url, home2.path()).await;
    let (b12, b12_note) = two.verified_checkpoint_note().await.unwrap();
    assert_ne!(b12.root_hash, a12.root_hash);
    show(&tree_a, 12, false);
    let err = one.gossip_checkpoint(&b12_note).await.unwrap_err();
    let evidence = evidence_of(err);
    assert_eq!(evidence.verify().unwrap().0, Misbehaviour::Fork { size: 12 });
    // Fork B grown to 14: the node can give no proof from A's 12 to B's 14.
    show(&tree_b, 14, false);
    let (_, b14_note) = two.verified_checkpoint_note().await.unwrap();
    show(&tree_a, 12, false);
    let evidence = evidence_of(one.gossip_checkpoint(&b14_note).await.unwrap_err());
    assert_eq!(
        evidence.verify().unwrap().0,
        Misbehaviour::Unproven { smaller: 12, larger: 14, went_backwards: false }
    );

    // Evidence that proves nothing is refused: one tree twice, and an edited note.
    let mut nothing = evidence.clone();
    nothing.later = a12_note.clone();
    nothing.earlier = a12_note.clone();
    assert_eq!(nothing.verify().unwrap_err().code(), "LOG_EVIDENCE_INVALID");
    let mut forged = evidence.clone();
    forged.later = forged.later.replacen("\n14\n", "\n15\n", 1);
    assert_eq!(forged.verify().unwrap_err().code(), "CHECKPOINT_SIGNATURE_INVALID");
    let mut other_node = evidence;
    other_node.node_kel = incept().1;
    assert!(other_node.verify().is_err(), "the KEL must be the node DID's");

    // Control: a client that saw A at 10 gossips with client one's A at 12: one log.
    show(&tree_a, 10, false);
    let three = client(&url, home3.path()).await;
    let (_, a10_note) = three.verified_checkpoint_note().await.unwrap();
    show(&tree_a, 12, false);
    let (own, peer) = one.gossip_checkpoint(&a10_note).await.unwrap();
    assert_eq!((own.size, peer.size), (12, 10));
}

#[tokio::test]
async fn a_witness_policy_refuses_checkpoints_below_its_quorum() {
    use atp::core::witness::{CosignerKey, WitnessPolicy};
    let (hostile, url, _, _) = start_hostile().await;
    *hostile.lie.lock().unwrap() = Lie::Log;
    let witnesses: Vec<(String, Arc<SigningKey>)> = (0..3)
        .map(|i| {
            let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
            (format!("witness.test/w{i}"), Arc::new(key))
        })
        .collect();
    let keys: Vec<CosignerKey> = witnesses
        .iter()
        .map(|(n, k)| CosignerKey::from_composite(n, k.public_key_ref()).unwrap())
        .collect();
    let tree = leaves(0xC, 8);
    let show = |size: u64, cosigners: &[(String, Arc<SigningKey>)]| {
        *hostile.view.lock().unwrap() =
            LogView { leaves: tree.clone(), size, bad_proof: false, cosigners: cosigners.to_vec() };
    };
    let home = tempfile::tempdir().unwrap();
    let mut opts = atp::AgentOptions::new(&url);
    opts.home = Some(home.path().to_path_buf());
    opts.witnesses = Some(WitnessPolicy::new(2, keys).unwrap());
    let me = Agent::connect_with(opts, "victim").await.unwrap();

    // No cosignature, then one: below the quorum, refused, and nothing is kept.
    for cosigners in [&witnesses[..0], &witnesses[..1]] {
        show(4, cosigners);
        let err = me.verified_checkpoint().await.unwrap_err();
        assert_eq!(err.code(), "WITNESS_QUORUM_NOT_MET", "{} cosigners: {err}", cosigners.len());
    }
    assert!(!home.path().join("agents/victim/checkpoints").exists(), "nothing kept");
    // Lines under witness 1's name by an impostor's key do not count.
    let impostor = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
    show(4, &[witnesses[0].clone(), (witnesses[1].0.clone(), Arc::new(impostor))]);
    assert_eq!(me.verified_checkpoint().await.unwrap_err().code(), "WITNESS_QUORUM_NOT_MET");
    // Two of three: accepted, and so is growth cosigned by the other two.
    show(4, &witnesses[..2]);
    assert_eq!(me.verified_checkpoint().await.unwrap().size, 4);
    show(8, &witnesses[1..]);
    assert_eq!(me.verified_checkpoint().await.unwrap().size, 8);
    assert_eq!(kept_size(home.path()), 8);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
