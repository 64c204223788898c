//! CredentialEvidence on a real node: a credential the node verified (quantum-safe proofs,
//! did:atp issuer and subject, status on a list the node hosts) becomes trust evidence once,
//! opens the level-2 gate of a subject that an anchor issued it to, and stops counting when it
//! is revoked or expires. Verifications the node cannot keep checking record nothing.
#![allow(missing_docs, clippy::unwrap_used)]

use crate::support::*;
use atp_grpc::v1 as pb;
use serde_json::{Value, json};

pub(crate) fn unsigned(subject: &str, valid_until_ms: Option<i64>) -> Value {
    let mut vc = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "validFrom": ts(T0_MS - 60_000),
        "credentialSubject": {"id": subject, "role": "operator"},
    });
    if let Some(until) = valid_until_ms {
        vc["validUntil"] = json!(ts(until));
    }
    vc
}

pub(crate) async fn issue(
    node: &Node,
    vc: &Value,
    purposes: &[pb::StatusPurpose],
) -> (Vec<u8>, Vec<pb::StatusEntryRef>) {
    let r = node
        .credentials()
        .await
        .issue_credential(bearer(pb::IssueCredentialRequest {
            credential_json: serde_json::to_vec(vc).unwrap(),
            status_purposes: purposes.iter().map(|p| *p as i32).collect(),
        }))
        .await
        .unwrap()
        .into_inner();
    (r.signed_credential_json, r.status_entries)
}

pub(crate) async fn verify(
    node: &Node,
    vc: &[u8],
    policy: pb::ProofPolicy,
    unchecked: bool,
) -> pb::VerifiedCredential {
    node.credentials()
        .await
        .verify_credential(pb::VerifyCredentialRequest {
            credential_json: vc.to_vec(),
            proof_policy: policy as i32,
            allow_unchecked_status: unchecked,
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap()
}

pub(crate) async fn credential_evidence(node: &Node) -> Vec<pb::EvidenceRecord> {
    atp_server::trust::list_evidence(
        &node.state,
        pb::ListEvidenceRequest {
            kind: pb::EvidenceKind::Credential as i32,
            page_size: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .evidence
}

pub(crate) async fn level(node: &Node, did: &str) -> (u32, Vec<String>) {
    atp_server::trust::recompute_now(&node.state).await.unwrap();
    let r = atp_server::trust::get_trust(&node.state, did).unwrap();
    (r.level, r.gates)
}

#[tokio::test]
async fn verified_credentials_gate_level_two_until_revoked_or_expired() {
    let node = start().await;
    let node_did = node.state.node_did.clone();
    let bob = store_agent(&node.store, T0_MS - 3_600_000).await;
    let carol = store_agent(&node.store, T0_MS - 3_600_000).await;
    node.store.set_trust_anchors(vec![node_did.clone()]).await.unwrap();

    let (bob_vc, entries) =
        issue(&node, &unsigned(&bob.did, None), &[pb::StatusPurpose::Revocation]).await;
    // Issuing alone is no evidence: nothing was verified yet.
    assert!(credential_evidence(&node).await.is_empty());
    assert_eq!(level(&node, &bob.did).await.0, 0);

    // Verified under the `Any` policy: the node did not check the quantum-safe proof set, so
    // nothing is recorded.
    let log_before = node.log_size().await;
    verify(&node, &bob_vc, pb::ProofPolicy::Any, false).await;
    assert!(credential_evidence(&node).await.is_empty());
    assert_eq!(node.log_size().await, log_before);

    // Verified under the quantum-safe policy: recorded once, with one `evidence` leaf.
    verify(&node, &bob_vc, pb::ProofPolicy::QuantumSafe, false).await;
    let recorded = credential_evidence(&node).await;
    assert_eq!(recorded.len(), 1);
    let record = &recorded[0];
    assert_eq!(
        (record.issuer.as_str(), record.subject.as_str()),
        (node_did.as_str(), bob.did.as_str())
    );
    assert_eq!(record.kind, pb::EvidenceKind::Credential as i32);
    let vc_value: Value = serde_json::from_slice(&bob_vc).unwrap();
    let canonical = atp_core::jcs::canonicalize(&vc_value).unwrap();
    assert_eq!(record.content_hash, atp_crypto::sha256(&canonical).to_vec());
    assert_eq!(record.evidence_json, canonical);
    assert_eq!(node.log_size().await, log_before + 1);
    // The same credential again (through the VC-API route as well) is a no-op.
    verify(&node, &bob_vc, pb::ProofPolicy::QuantumSafe, false).await;
    let (status, body) = node
        .http_json(
            "POST",
            "/credentials/verify",
            &[],
            Some(&json!({"verifiableCredential": vc_value})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(credential_evidence(&node).await.len(), 1);
    assert_eq!(node.log_size().await, log_before + 1);

    // An anchor's credential opens the level-2 gate.
    let (bob_level, gates) = level(&node, &bob.did).await;
    assert!(bob_level >= 2, "level {bob_level}, gates {gates:?}");
    assert!(gates.is_empty(), "{gates:?}");

    // Revoked: the next computation drops the credential and the level.
    node.credentials()
        .await
        .update_status(bearer(pb::UpdateStatusRequest {
            update: Some(pb::update_status_request::Update::NodeIssuer(
                pb::NodeIssuerStatusChange {
                    entry: Some(entries[0].clone()),
                    action: pb::StatusAction::Revoke as i32,
                },
            )),
        }))
        .await
        .unwrap();
    let (bob_level, _) = level(&node, &bob.did).await;
    assert!(bob_level <= 1, "revoked, yet level {bob_level}");

    // A credential with validUntil counts until then.
    let (carol_vc, _) = issue(&node, &unsigned(&carol.did, Some(T0_MS + 3_600_000)), &[]).await;
    verify(&node, &carol_vc, pb::ProofPolicy::QuantumSafe, false).await;
    let (carol_level, gates) = level(&node, &carol.did).await;
    assert!(carol_level >= 2, "level {carol_level}, gates {gates:?}");
    node.set_now(T0_MS + 2 * 3_600_000);
    let (carol_level, _) = level(&node, &carol.did).await;
    assert!(carol_level <= 1, "expired, yet level {carol_level}");
    assert_eq!(credential_evidence(&node).await.len(), 2);
}

#[tokio::test]
async fn credentials_the_node_cannot_keep_checking_are_not_recorded() {
    let node = start().await;
    let bob = store_agent(&node.store, T0_MS - 3_600_000).await;
    let log_before = node.log_size().await;

    // A subject that is not a did:atp.
    let (vc, _) = issue(&node, &unsigned("did:example:agent", None), &[]).await;
    verify(&node, &vc, pb::ProofPolicy::QuantumSafe, false).await;
    // Self-issued: the subject is the issuer.
    let (vc, _) = issue(&node, &unsigned(&node.state.node_did.clone(), None), &[]).await;
    verify(&node, &vc, pb::ProofPolicy::QuantumSafe, false).await;
    // Two subjects.
    let mut two = unsigned(&bob.did, None);
    two["credentialSubject"] = json!([{"id": bob.did}, {"id": node.state.node_did}]);
    let (vc, _) = issue(&node, &two, &[]).await;
    verify(&node, &vc, pb::ProofPolicy::QuantumSafe, false).await;
    // A status list this node does not host, accepted only as unchecked.
    let mut external = unsigned(&bob.did, None);
    external["credentialStatus"] = json!({
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "7",
        "statusListCredential": "https://status.example.com/lists/1",
    });
    let (vc, _) = issue(&node, &external, &[]).await;
    let verified = verify(&node, &vc, pb::ProofPolicy::QuantumSafe, true).await;
    // The relying party is told what it must still judge itself.
    assert_eq!(verified.warnings, vec![atp_server::credential::WARNING_STATUS_UNCHECKED]);

    assert!(credential_evidence(&node).await.is_empty());
    assert_eq!(node.log_size().await, log_before);
}

/// GetTrust reuses a signed proof only while it states exactly the current result and has at
/// least half of its lifetime left.
#[tokio::test]
async fn trust_proofs_are_reused_only_while_they_state_the_current_result() {
    let node = start().await;
    let bob = store_agent(&node.store, T0_MS - 3_600_000).await;
    node.store.set_trust_anchors(vec![node.state.node_did.clone()]).await.unwrap();
    atp_server::trust::recompute_now(&node.state).await.unwrap();
    let get = || atp_server::trust::get_trust(&node.state, &bob.did).unwrap();
    let first = get();
    assert_eq!(first.level, 0);
    assert_eq!(get().trust_proof_json, first.trust_proof_json, "reused within the snapshot");

    let (vc, _) = issue(&node, &unsigned(&bob.did, None), &[]).await;
    verify(&node, &vc, pb::ProofPolicy::QuantumSafe, false).await;
    atp_server::trust::recompute_now(&node.state).await.unwrap();
    let raised = get();
    assert!(raised.level >= 2, "level {}", raised.level);
    assert_ne!(raised.trust_proof_json, first.trust_proof_json, "a new result, a new proof");
    let proof: Value = serde_json::from_slice(&raised.trust_proof_json).unwrap();
    assert_eq!(proof["credentialSubject"]["trustLevel"], json!(raised.level));

    let ttl_ms = node.state.settings.trust_proof_ttl_secs * 1000;
    node.set_now(T0_MS + ttl_ms / 2);
    assert_eq!(get().trust_proof_json, raised.trust_proof_json, "half the lifetime left");
    node.set_now(T0_MS + ttl_ms / 2 + 1000);
    let renewed = get();
    assert_ne!(renewed.trust_proof_json, raised.trust_proof_json, "less than half left");
    assert_eq!(renewed.valid_until_unix_ms, raised.valid_until_unix_ms + ttl_ms / 2 + 1000);
}
