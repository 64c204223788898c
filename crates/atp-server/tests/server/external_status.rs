//! Status lists hosted for an external issuer: HostStatusList, then UpdateStatus with the
//! issuer's signed updates (docs/protocol.md §D4), against a real node.
#![allow(missing_docs, clippy::unwrap_used)]

use crate::support::*;
use atp_core::data_integrity::{self, ProofSetOptions};
use atp_core::log_entry::{entry_leaf_hash, status_update_data_hash};
use atp_core::status_list::StatusPurpose;
use atp_core::status_update::{StatusChange, StatusListUpdate};
use atp_grpc::v1 as pb;
use atp_store::LeafKind;
use serde_json::{Value, json};
use tonic::Code;

fn host_req(issuer: &str, purpose: pb::StatusPurpose) -> pb::HostStatusListRequest {
    pb::HostStatusListRequest {
        issuer: issuer.into(),
        status_purpose: purpose as i32,
        status_size: 0,
        entries: 0,
    }
}

fn signed(update: &StatusListUpdate, key: &atp_crypto::SigningKey) -> pb::UpdateStatusRequest {
    let (bytes, signature) = update.sign(key).unwrap();
    signed_raw(bytes, signature)
}

fn signed_raw(update: Vec<u8>, signature: Vec<u8>) -> pb::UpdateStatusRequest {
    pb::UpdateStatusRequest {
        update: Some(pb::update_status_request::Update::SignedUpdate(pb::SignedStatusListUpdate {
            update,
            signature,
        })),
    }
}

/// A credential that the external issuer signs itself, with a revocation entry on the list.
fn issuer_credential(issuer: &Agent, list_url: &str, index: u64) -> Vec<u8> {
    let unsigned = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "issuer": issuer.did,
        "validFrom": ts(T0_MS - 60_000),
        "credentialSubject": {"id": "did:example:agent", "role": "auditor"},
        "credentialStatus": {
            "id": format!("{list_url}#{index}"),
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": index.to_string(),
            "statusListCredential": list_url,
        },
    });
    let options = ProofSetOptions::assertion(
        format!("{}#mldsa65", issuer.did),
        format!("{}#ed25519", issuer.did),
        ts(T0_MS - 60_000),
    );
    let vc = data_integrity::sign_quantum_safe_proof_set(&unsigned, &issuer.key, &options).unwrap();
    serde_json::to_vec(&vc).unwrap()
}

fn verify_req(json: &[u8]) -> pb::VerifyCredentialRequest {
    pb::VerifyCredentialRequest {
        credential_json: json.to_vec(),
        proof_policy: pb::ProofPolicy::QuantumSafe as i32,
        allow_unchecked_status: false,
    }
}

#[tokio::test]
async fn external_issuer_revokes_through_signed_updates_only() {
    let node = start().await;
    let mut c = node.credentials().await;
    let issuer = store_agent(&node.store, T0_MS - 7_200_000).await;
    let intruder = store_agent(&node.store, T0_MS - 7_200_000).await;

    // Hosting needs the admin; the issuer must be a did:atp the node knows.
    let req = host_req(&issuer.did, pb::StatusPurpose::Revocation);
    let e = c.host_status_list(req.clone()).await.unwrap_err();
    assert_eq!(reason(&e), "AUTH_REQUIRED");
    let unknown =
        host_req("did:atp:zQmUnknownUnknownUnknownUnknownUnknown", pb::StatusPurpose::Revocation);
    let e = c.host_status_list(bearer(unknown)).await.unwrap_err();
    assert!(matches!(reason(&e).as_str(), "DID_NOT_FOUND" | "DID_INVALID"), "{e:?}");
    let e = c
        .host_status_list(bearer(host_req("did:web:example.com", pb::StatusPurpose::Revocation)))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "DID_METHOD_NOT_SUPPORTED");
    let e = c
        .host_status_list(bearer(host_req(&issuer.did, pb::StatusPurpose::Unspecified)))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "FIELD_INVALID");
    let hosted = c.host_status_list(bearer(req)).await.unwrap().into_inner();
    assert_eq!(hosted.controller, issuer.did);
    assert_eq!((hosted.status_size, hosted.entries), (1, 131_072));
    let url = hosted.status_list_credential.clone();
    assert!(url.starts_with(&format!("http://{}/status/ext-revocation-", node.addr)), "{url}");

    // The issuer's credential verifies while its entry is clear.
    let vc = issuer_credential(&issuer, &url, 5);
    let ok = c.verify_credential(verify_req(&vc)).await.unwrap().into_inner();
    assert_eq!(ok.credential.unwrap().issuer, issuer.did);

    let revoke = StatusListUpdate {
        issuer: issuer.did.clone(),
        issuer_key_seq: 0,
        status_list_credential: url.clone(),
        status_purpose: StatusPurpose::Revocation,
        update_seq: 1,
        issued_at_ms: T0_MS,
        changes: vec![StatusChange { index: 5, value: 1 }, StatusChange { index: 77, value: 1 }],
    };

    // Refusals first: each has its own reason and changes nothing.
    let size = node.log_size().await;
    let mut cases: Vec<(&str, pb::UpdateStatusRequest)> = Vec::new();
    cases.push(("STATUS_UPDATE_MALFORMED", signed_raw(b"ATPSTL1\0garbage".to_vec(), vec![1])));
    let mut future = revoke.clone();
    future.issued_at_ms = T0_MS + 3_600_000;
    cases.push(("STATUS_UPDATE_MALFORMED", signed(&future, &issuer.key)));
    let mut elsewhere = revoke.clone();
    elsewhere.status_list_credential = format!("http://{}/status/ext-revocation-none", node.addr);
    cases.push(("STATUS_LIST_NOT_FOUND", signed(&elsewhere, &issuer.key)));
    let mut foreign = revoke.clone();
    foreign.status_list_credential = "https://issuer.example/status/1".into();
    cases.push(("STATUS_LIST_NOT_FOUND", signed(&foreign, &issuer.key)));
    let mut not_issuer = revoke.clone();
    not_issuer.issuer = intruder.did.clone();
    cases.push(("STATUS_UPDATE_NOT_ISSUER", signed(&not_issuer, &intruder.key)));
    cases.push(("STATUS_UPDATE_BAD_SIGNATURE", signed(&revoke, &intruder.key)));
    let mut old_key = revoke.clone();
    old_key.issuer_key_seq = 1;
    cases.push(("STATUS_UPDATE_KEY_NOT_CURRENT", signed(&old_key, &issuer.key)));
    let mut purpose = revoke.clone();
    purpose.status_purpose = StatusPurpose::Suspension;
    cases.push(("STATUS_LIST_PURPOSE_MISMATCH", signed(&purpose, &issuer.key)));
    let mut range = revoke.clone();
    range.changes.push(StatusChange { index: 131_072, value: 1 });
    cases.push(("STATUS_LIST_RANGE_ERROR", signed(&range, &issuer.key)));
    let mut value = revoke.clone();
    value.changes[1].value = 2;
    cases.push(("STATUS_LIST_VALUE_OUT_OF_RANGE", signed(&value, &issuer.key)));
    let (bytes, mut sig) = revoke.sign(&issuer.key).unwrap();
    sig[10] ^= 1;
    cases.push(("STATUS_UPDATE_BAD_SIGNATURE", signed_raw(bytes, sig)));
    for (want, req) in cases {
        let e = c.update_status(req).await.unwrap_err();
        assert_eq!(reason(&e), want, "{e:?}");
    }
    // The node's admin cannot change an external issuer's list.
    let admin = pb::UpdateStatusRequest {
        update: Some(pb::update_status_request::Update::NodeIssuer(pb::NodeIssuerStatusChange {
            entry: Some(pb::StatusEntryRef {
                status_list_credential: url.clone(),
                status_list_index: 5,
                status_purpose: pb::StatusPurpose::Revocation as i32,
            }),
            action: pb::StatusAction::Revoke as i32,
        })),
    };
    let e = c.update_status(bearer(admin)).await.unwrap_err();
    assert_eq!(
        (e.code(), reason(&e).as_str()),
        (Code::PermissionDenied, "STATUS_UPDATE_NOT_ISSUER")
    );
    assert_eq!(node.log_size().await, size);
    c.verify_credential(verify_req(&vc)).await.unwrap();

    // The issuer's own update applies; its log leaf commits to the signed bytes.
    let (bytes, signature) = revoke.sign(&issuer.key).unwrap();
    let r =
        c.update_status(signed_raw(bytes.clone(), signature.clone())).await.unwrap().into_inner();
    assert_eq!((r.status_list_credential.as_str(), r.update_seq), (url.as_str(), 1));
    let receipt = r.log_receipt.unwrap();
    let data = status_update_data_hash(&bytes, &signature).unwrap();
    assert_eq!(receipt.leaf_hash, entry_leaf_hash(LeafKind::StatusUpdate, &data).to_vec());
    assert_eq!(node.log_size().await, size + 1);
    let e = c.verify_credential(verify_req(&vc)).await.unwrap_err();
    assert_eq!(reason(&e), "CREDENTIAL_REVOKED");

    // A captured update cannot be replayed, and revocation is final.
    let e = c.update_status(signed_raw(bytes, signature)).await.unwrap_err();
    assert_eq!(reason(&e), "STATUS_UPDATE_STALE");
    let mut unrevoke = revoke.clone();
    unrevoke.update_seq = 2;
    unrevoke.changes = vec![StatusChange { index: 5, value: 0 }];
    let e = c.update_status(signed(&unrevoke, &issuer.key)).await.unwrap_err();
    assert_eq!(reason(&e), "STATUS_REVOCATION_FINAL");
    assert_eq!(node.log_size().await, size + 1);

    // The published list names the issuer as controller and carries the bits.
    let g = c
        .get_status_list(pb::GetStatusListRequest { status_list_credential: url.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((g.controller.as_str(), g.update_seq), (issuer.did.as_str(), 1));
    let list: Value = serde_json::from_slice(&g.status_list_credential_json).unwrap();
    let info = atp_core::status_list::parse_status_list_credential(&list, 1).unwrap();
    assert_eq!((info.list.get(5).unwrap(), info.list.get(77).unwrap()), (1, 1));
    assert_eq!(info.list.get(6).unwrap(), 0);
}
