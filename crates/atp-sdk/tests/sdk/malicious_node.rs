//! A hostile node: its answers are wrong in the ways a compromised or buggy node could be
//! wrong (a key of the wrong size, another DID's log, a checkpoint signed by someone else, an
//! inclusion proof that does not match, a trust proof edited, signed by someone else, about
//! another DID or expired). The SDK must refuse each with `NODE_MISBEHAVED`, never trust it and
//! never panic.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use atp::Agent;
use atp::core::checkpoint::{Checkpoint, sign_note};
use atp::core::kel::{self, SignedEvent};
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
        let note = sign_note(&Checkpoint::new(ORIGIN, 4, [7u8; 32]), ORIGIN, ed, mldsa).unwrap();
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
        _: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::GetConsistencyProofResponse>, Status> {
        Err(Status::unimplemented("hostile"))
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

#[tokio::test]
async fn hostile_node_answers_are_refused_as_node_misbehaved() {
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

    let home = tempfile::tempdir().unwrap();
    let mut opts = atp::AgentOptions::new(&url);
    opts.home = Some(home.path().to_path_buf());
    let me = Agent::connect_with(opts, "victim").await.unwrap();

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

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
