//! The full identity lifecycle against a real served node, with every event's inclusion proved
//! against a signed checkpoint and a consistency proof between two checkpoints.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use crate::common::{TestNode, key};
use atp_core::kel::{self, SignedEvent};
use atp_core::log_entry::{LeafKind, entry_leaf_hash, kel_data_hash};
use atp_core::tlog::{Hash, verify_consistency, verify_inclusion};
use atp_grpc::v1 as pb;

fn hash(bytes: &[u8]) -> Hash {
    bytes.try_into().expect("32-byte hash")
}

fn metadata(r: &pb::ResolveResponse) -> serde_json::Value {
    serde_json::from_str(&r.did_document_metadata_json).expect("metadata json")
}

/// Checks the receipt against the stored leaf layout and proves inclusion against a signed
/// checkpoint that covers it. Returns the checkpoint's size and root.
async fn prove(node: &TestNode, event: &SignedEvent, receipt: &pb::LogReceipt) -> (u64, Hash) {
    let leaf = entry_leaf_hash(LeafKind::Kel, &kel_data_hash(event).expect("data hash"));
    assert_eq!(receipt.leaf_hash, leaf.to_vec(), "the receipt names the event's leaf");
    let (cp, _) = node.checkpoint_covering(receipt.leaf_index + 1).await;
    let proof = node
        .log()
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafIndex(receipt.leaf_index)),
            tree_size: cp.size,
        })
        .await
        .expect("inclusion proof")
        .into_inner();
    assert_eq!(proof.tree_size, cp.size);
    assert_eq!(proof.leaf_hash, leaf.to_vec());
    let path: Vec<Hash> = proof.inclusion_path.iter().map(|h| hash(h)).collect();
    verify_inclusion(receipt.leaf_index, cp.size, &leaf, &path, &cp.root_hash)
        .expect("inclusion verifies against the signed root");
    // The same proof by leaf hash.
    let by_hash = node
        .log()
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafHash(leaf.to_vec())),
            tree_size: cp.size,
        })
        .await
        .expect("inclusion proof by hash")
        .into_inner();
    assert_eq!(by_hash.leaf_index, receipt.leaf_index);
    (cp.size, cp.root_hash)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_lifecycle_with_verified_log_proofs() {
    let node = TestNode::start().await;
    let (k0, k1, k2) = (key(), key(), key());

    // Create.
    let icp = kel::incept(&k0, k1.public_key_ref(), vec![], "2026-02-01T00:00:00Z").expect("icp");
    let r = node.submit(&icp).await.expect("inception accepted");
    let did = format!("did:atp:{}", icp.event.scid().expect("scid"));
    assert_eq!(r.did, did);
    assert_eq!(r.sequence, 0);
    assert_eq!(r.outcome, pb::SubmitEventOutcome::Accepted as i32);
    assert_eq!(r.event_digest, icp.digest().expect("digest"));
    let (first_size, first_root) =
        prove(&node, &icp, r.log_receipt.as_ref().expect("receipt")).await;

    // Resolve.
    let v0 = node
        .identity()
        .resolve(pb::ResolveRequest { did: did.clone(), version_id: None })
        .await
        .expect("resolve")
        .into_inner();
    let doc: serde_json::Value = serde_json::from_str(&v0.did_document_json).expect("doc");
    assert_eq!(doc["id"], did.as_str());
    assert_eq!(metadata(&v0)["versionId"], "0");
    assert_eq!(metadata(&v0)["deactivated"], false);

    // Rotate.
    let s0 = kel::verify_log(std::slice::from_ref(&icp)).expect("state 0");
    let rot =
        kel::rotate(&s0, &k1, k2.public_key_ref(), None, "2026-02-02T00:00:00Z").expect("rot");
    let r = node.submit(&rot).await.expect("rotation accepted");
    assert_eq!((r.sequence, r.outcome), (1, pb::SubmitEventOutcome::Accepted as i32));
    prove(&node, &rot, r.log_receipt.as_ref().expect("receipt")).await;

    // Resolve the old and the new version.
    let old = node
        .identity()
        .resolve(pb::ResolveRequest { did: did.clone(), version_id: Some(0) })
        .await
        .expect("resolve v0")
        .into_inner();
    assert_eq!(old.did_document_json, v0.did_document_json, "version 0 is unchanged");
    assert_eq!(metadata(&old)["versionId"], "0");
    assert_eq!(metadata(&old)["nextVersionId"], "1");
    let new = node
        .identity()
        .resolve(pb::ResolveRequest { did: did.clone(), version_id: None })
        .await
        .expect("resolve latest")
        .into_inner();
    assert_eq!(metadata(&new)["versionId"], "1");
    assert_ne!(new.did_document_json, old.did_document_json, "the key changed");
    assert_eq!(
        new.log_receipt.as_ref().map(|r| r.leaf_index),
        r.log_receipt.as_ref().map(|r| r.leaf_index)
    );

    // Deactivate.
    let s1 = kel::verify_log(&[icp.clone(), rot.clone()]).expect("state 1");
    let dea = kel::deactivate(&s1, &k2, "2026-02-03T00:00:00Z").expect("dea");
    let r = node.submit(&dea).await.expect("deactivation accepted");
    assert_eq!(r.sequence, 2);
    let (last_size, last_root) = prove(&node, &dea, r.log_receipt.as_ref().expect("receipt")).await;

    let gone = node
        .identity()
        .resolve(pb::ResolveRequest { did: did.clone(), version_id: None })
        .await
        .expect("resolve deactivated")
        .into_inner();
    assert_eq!(metadata(&gone)["deactivated"], true);
    let doc: serde_json::Value = serde_json::from_str(&gone.did_document_json).expect("doc");
    assert!(doc.get("verificationMethod").is_none(), "a deactivated document has no keys: {doc}");

    // The KEL, verified offline by the client.
    let log = node
        .identity()
        .get_key_event_log(pb::GetKeyEventLogRequest {
            did: did.clone(),
            from_sequence: 0,
            page_size: 0,
        })
        .await
        .expect("kel")
        .into_inner();
    assert_eq!(log.event_count, 3);
    let events: Vec<SignedEvent> = log
        .events
        .iter()
        .map(|e| SignedEvent::from_json(&e.signed_event_json).expect("event"))
        .collect();
    assert_eq!(events, vec![icp, rot, dea]);
    assert!(kel::verify_log(&events).expect("verifies").deactivated);

    // Listing: the node itself and this identity.
    let list = node
        .identity()
        .list_identities(pb::ListIdentitiesRequest { page_size: 0, page_token: String::new() })
        .await
        .expect("list")
        .into_inner();
    let mine = list.identities.iter().find(|i| i.did == did).expect("listed");
    assert!(mine.deactivated);
    assert_eq!(mine.latest_sequence, 2);
    assert_eq!(list.identities.len(), 2);

    // Consistency between the first and the last checkpoint.
    assert!(first_size < last_size);
    let proof = node
        .log()
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_tree_size: first_size,
            second_tree_size: last_size,
        })
        .await
        .expect("consistency proof")
        .into_inner();
    let path: Vec<Hash> = proof.consistency_path.iter().map(|h| hash(h)).collect();
    verify_consistency(first_size, last_size, &first_root, &last_root, &path)
        .expect("the later checkpoint extends the earlier one");

    // Entries: the leaf layout the store defines.
    let entries = node
        .log()
        .get_entries(pb::GetEntriesRequest { start_index: 0, page_size: 0 })
        .await
        .expect("entries")
        .into_inner();
    assert!(entries.tree_size >= last_size);
    for e in &entries.entries {
        assert!(e.entry.starts_with(b"atp/tlog/1/"));
    }

    // Health and node info.
    let info =
        node.admin().get_node_info(pb::GetNodeInfoRequest {}).await.expect("info").into_inner();
    assert_eq!(info.node_did, node.state.node_did);
    assert_eq!(info.edition, pb::NodeEdition::Community as i32);

    node.stop().await;
}
