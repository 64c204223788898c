//! Erasure on a real node (docs/audit.md, "Erasure"): a credential the node verified counts in
//! trust and is stored only sealed; `AdminService.EraseSubject` destroys it, so the subject's
//! level falls at once and nothing about it is recorded again, while the log stays verifiable
//! and the credential's attributes are in no file of the data directory.
#![allow(missing_docs, clippy::unwrap_used)]

use crate::credential_evidence::{credential_evidence, issue, level, unsigned, verify};
use crate::support::*;
use atp_core::erasure::erasure_data_hash;
use atp_core::log_entry::{LeafKind, entry_leaf_hash};
use atp_core::tlog;
use atp_grpc::v1 as pb;

/// Whether any file of `dir` holds `needle`.
fn on_disk(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        std::fs::read(entry.path())
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
    })
}

/// `EraseSubject` of `subject` with the admin token.
async fn erase(node: &Node, subject: &str) -> Result<pb::EraseSubjectResponse, tonic::Status> {
    let request = bearer(pb::EraseSubjectRequest { subject: subject.to_owned() });
    node.admin().await.erase_subject(request).await.map(tonic::Response::into_inner)
}

#[tokio::test]
async fn an_erased_subject_loses_its_credential_and_leaves_no_plaintext() {
    let node = start().await;
    node.store.set_trust_anchors(vec![node.state.node_did.clone()]).await.unwrap();
    let bob = store_agent(&node.store, T0_MS - 3_600_000).await;
    let mut nonce = [0u8; 8];
    atp_crypto::random_bytes(&mut nonce).unwrap();
    let email = format!("bob-{}@example.test", hex::encode(nonce));
    let mut vc = unsigned(&bob.did, None);
    vc["credentialSubject"]["email"] = serde_json::json!(email);
    let (bob_vc, _) = issue(&node, &vc, &[pb::StatusPurpose::Revocation]).await;
    verify(&node, &bob_vc, pb::ProofPolicy::QuantumSafe, false).await;
    let recorded = credential_evidence(&node).await;
    assert_eq!(recorded.len(), 1);
    assert!(String::from_utf8_lossy(&recorded[0].evidence_json).contains(&email));
    assert!(level(&node, &bob.did).await.0 >= 2);
    // Stored sealed: the attribute is on no page of the database or its log, though the
    // subject's DID (stored in clear) is.
    assert!(on_disk(node.data_dir(), bob.did.as_bytes()), "the search finds nothing");
    assert!(!on_disk(node.data_dir(), email.as_bytes()), "the attribute is stored in clear");

    // Without the admin token: refused, nothing erased.
    let err = node
        .admin()
        .await
        .erase_subject(pb::EraseSubjectRequest { subject: bob.did.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert_eq!(credential_evidence(&node).await.len(), 1);

    let size_before = node.log_size().await;
    let root_before = node.store.root_at(size_before).await.unwrap();
    let erased = erase(&node, &bob.did).await.unwrap();
    assert_eq!((erased.subject.as_str(), erased.evidence_erased), (bob.did.as_str(), 1));
    assert!(!erased.already_erased);
    let receipt = erased.log_receipt.unwrap();
    assert_eq!(receipt.leaf_index, size_before);
    let data_hash = erasure_data_hash(&bob.did, erased.erased_at_unix_ms, 1);
    assert_eq!(receipt.leaf_hash, entry_leaf_hash(LeafKind::Erasure, &data_hash).to_vec());

    // The answer came after the recomputation: the level has already fallen.
    let r = atp_server::trust::get_trust(&node.state, &bob.did).unwrap();
    assert!(r.level <= 1, "erased, yet level {}", r.level);
    assert!(credential_evidence(&node).await.is_empty());
    // Verifying the credential again still answers, and records nothing.
    let size = node.log_size().await;
    verify(&node, &bob_vc, pb::ProofPolicy::QuantumSafe, false).await;
    assert!(credential_evidence(&node).await.is_empty());
    assert_eq!(node.log_size().await, size);
    assert!(level(&node, &bob.did).await.0 <= 1);

    // The log: the destroyed evidence's leaf is still proven, and the tree grew consistently.
    let root = node.store.root_at(size).await.unwrap();
    let content_hash: [u8; 32] = recorded[0].content_hash.clone().try_into().unwrap();
    let leaf = entry_leaf_hash(LeafKind::Evidence, &content_hash);
    let index = recorded[0].log_receipt.as_ref().unwrap().leaf_index;
    let proof = node.store.inclusion_proof(index, size).await.unwrap();
    tlog::verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
    let proof = node.store.consistency_proof(size_before, size).await.unwrap();
    tlog::verify_consistency(size_before, size, &root_before, &root, &proof).unwrap();
    assert!(!on_disk(node.data_dir(), email.as_bytes()));

    // Again: nothing changes, the first erasure is answered.
    let again = erase(&node, &bob.did).await.unwrap();
    assert!(again.already_erased);
    assert_eq!(again.erased_at_unix_ms, erased.erased_at_unix_ms);
    assert_eq!(node.log_size().await, size);

    // Not a DID: refused with the DID rule's code.
    let err = erase(&node, "bob@example.test").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(reason(&err), "DID_INVALID");
    assert_eq!(node.log_size().await, size);
}
