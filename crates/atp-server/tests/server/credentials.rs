//! CredentialService and the VC-API routes against a real node.
#![allow(missing_docs, clippy::unwrap_used)]

use crate::support::*;
use atp_grpc::v1 as pb;
use serde_json::{Value, json};
use tonic::Code;

fn unsigned(subject: &str) -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "validFrom": ts(T0_MS - 60_000),
        "credentialSubject": {"id": subject, "role": "operator"},
    })
}

async fn issue(node: &Node, purposes: &[pb::StatusPurpose]) -> (Vec<u8>, Vec<pb::StatusEntryRef>) {
    let mut c = node.credentials().await;
    let r = c
        .issue_credential(bearer(pb::IssueCredentialRequest {
            credential_json: serde_json::to_vec(&unsigned("did:example:agent")).unwrap(),
            status_purposes: purposes.iter().map(|p| *p as i32).collect(),
        }))
        .await
        .unwrap()
        .into_inner();
    (r.signed_credential_json, r.status_entries)
}

fn verify_req(json: &[u8], policy: pb::ProofPolicy) -> pb::VerifyCredentialRequest {
    pb::VerifyCredentialRequest {
        credential_json: json.to_vec(),
        proof_policy: policy as i32,
        allow_unchecked_status: false,
    }
}

#[tokio::test]
async fn issue_verify_revoke_verify_fails_and_status_list_over_http() {
    let node = start().await;
    let mut c = node.credentials().await;
    let (vc, entries) = issue(&node, &[pb::StatusPurpose::Revocation]).await;
    assert_eq!(entries.len(), 1);
    let vc_json: Value = serde_json::from_slice(&vc).unwrap();
    assert_eq!(vc_json["issuer"], json!(node.state.node_did));
    assert_eq!(vc_json["proof"].as_array().unwrap().len(), 2);

    // Verifies under the default (quantum-safe) policy, status clear.
    let ok = c
        .verify_credential(verify_req(&vc, pb::ProofPolicy::Unspecified))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.proof_policy, pb::ProofPolicy::QuantumSafe as i32);
    let v = ok.credential.unwrap();
    assert_eq!(v.issuer, node.state.node_did);
    assert_eq!(v.proofs.len(), 2);
    assert_eq!(v.status_checks.len(), 1);
    assert_eq!(v.status_checks[0].outcome, pb::StatusCheckOutcome::Clear as i32);
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);

    // The same over HTTP: every check passed, nothing left to the relying party.
    let (status, body) = node
        .http_json(
            "POST",
            "/credentials/verify",
            &[],
            Some(&json!({"verifiableCredential": vc_json})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"], json!(["proof", "validityPeriod", "credentialStatus"]));
    assert_eq!(body["warnings"], json!([]));

    // Revoking needs the admin.
    let size = node.log_size().await;
    let change = pb::UpdateStatusRequest {
        update: Some(pb::update_status_request::Update::NodeIssuer(pb::NodeIssuerStatusChange {
            entry: Some(entries[0].clone()),
            action: pb::StatusAction::Revoke as i32,
        })),
    };
    let e = c.update_status(tonic::Request::new(change.clone())).await.unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::Unauthenticated, "AUTH_REQUIRED"));
    // Suspending an entry of a revocation list is a purpose mismatch.
    let mut wrong = change.clone();
    if let Some(pb::update_status_request::Update::NodeIssuer(ch)) = &mut wrong.update {
        ch.action = pb::StatusAction::Suspend as i32;
    }
    let e = c.update_status(bearer(wrong)).await.unwrap_err();
    assert_eq!(reason(&e), "STATUS_LIST_PURPOSE_MISMATCH");
    assert_eq!(node.log_size().await, size, "rejected calls store nothing");

    let r = c.update_status(bearer(change.clone())).await.unwrap().into_inner();
    assert!(r.log_receipt.is_some());
    assert_eq!(r.update_seq, 1);
    assert_eq!(node.log_size().await, size + 1);
    // Idempotent: no second leaf.
    let again = c.update_status(bearer(change)).await.unwrap().into_inner();
    assert!(again.log_receipt.is_none());
    assert_eq!(node.log_size().await, size + 1);

    // Verification now fails with the revocation reason, over gRPC and HTTP.
    let e = c.verify_credential(verify_req(&vc, pb::ProofPolicy::QuantumSafe)).await.unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::InvalidArgument, "CREDENTIAL_REVOKED"));
    let (status, body) = node
        .http_json(
            "POST",
            "/credentials/verify",
            &[],
            Some(&json!({"verifiableCredential": vc_json})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["reason"], "CREDENTIAL_REVOKED");

    // The status list over HTTP: a signed BitstringStatusListCredential with the bit set.
    let url = &entries[0].status_list_credential;
    let path = url.strip_prefix(&format!("http://{}", node.addr)).unwrap();
    let (status, list) = node.http_json("GET", path, &[], None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["id"], json!(url));
    let info = atp_core::status_list::parse_status_list_credential(&list, 1).unwrap();
    assert_eq!(info.list.get(entries[0].status_list_index).unwrap(), 1);
    assert_eq!(info.list.entries(), 131_072);
    // It verifies as a credential of the node (quantum-safe proof set).
    let e2 = c
        .verify_credential(verify_req(
            &serde_json::to_vec(&list).unwrap(),
            pb::ProofPolicy::QuantumSafe,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(e2.credential.unwrap().issuer, node.state.node_did);
    // The gRPC GetStatusList agrees.
    let g = c
        .get_status_list(pb::GetStatusListRequest { status_list_credential: url.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.controller, node.state.node_did);
    assert_eq!(g.update_seq, 1);
}

#[tokio::test]
async fn suspension_can_be_reinstated_and_revocation_is_final() {
    let node = start().await;
    let mut c = node.credentials().await;
    let (vc, entries) =
        issue(&node, &[pb::StatusPurpose::Revocation, pb::StatusPurpose::Suspension]).await;
    let change = |e: &pb::StatusEntryRef, a: pb::StatusAction| pb::UpdateStatusRequest {
        update: Some(pb::update_status_request::Update::NodeIssuer(pb::NodeIssuerStatusChange {
            entry: Some(e.clone()),
            action: a as i32,
        })),
    };
    c.update_status(bearer(change(&entries[1], pb::StatusAction::Suspend))).await.unwrap();
    let e = c.verify_credential(verify_req(&vc, pb::ProofPolicy::QuantumSafe)).await.unwrap_err();
    assert_eq!(reason(&e), "CREDENTIAL_SUSPENDED");
    c.update_status(bearer(change(&entries[1], pb::StatusAction::Reinstate))).await.unwrap();
    c.verify_credential(verify_req(&vc, pb::ProofPolicy::QuantumSafe)).await.unwrap();
    // A revocation entry cannot be "reinstated".
    c.update_status(bearer(change(&entries[0], pb::StatusAction::Revoke))).await.unwrap();
    let size = node.log_size().await;
    let e = c
        .update_status(bearer(change(&entries[0], pb::StatusAction::Reinstate)))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "STATUS_LIST_PURPOSE_MISMATCH");
    assert_eq!(node.log_size().await, size);
}

#[tokio::test]
async fn tampered_and_unauthorised_requests_are_refused_without_writes() {
    let node = start().await;
    let mut c = node.credentials().await;
    let (vc, _) = issue(&node, &[]).await;
    let size = node.log_size().await;
    let mut tampered: Value = serde_json::from_slice(&vc).unwrap();
    tampered["credentialSubject"]["role"] = json!("admin");
    let e = c
        .verify_credential(verify_req(
            &serde_json::to_vec(&tampered).unwrap(),
            pb::ProofPolicy::QuantumSafe,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "CRYPTOGRAPHIC_SECURITY_ERROR");
    // A proof set with a proof missing fails the quantum-safe policy, and the interop policy
    // too: the issuer is a did:atp, whose one proof alone would be a downgrade.
    for keep in 0..2 {
        let mut one: Value = serde_json::from_slice(&vc).unwrap();
        one["proof"] = one["proof"][keep].clone();
        for policy in [pb::ProofPolicy::QuantumSafe, pb::ProofPolicy::Any] {
            let e = c
                .verify_credential(verify_req(&serde_json::to_vec(&one).unwrap(), policy))
                .await
                .unwrap_err();
            assert_eq!(reason(&e), "CRYPTOGRAPHIC_SECURITY_ERROR", "{policy:?}");
            assert!(e.message().contains("POLICY_NOT_SATISFIED"), "{policy:?}: {e:?}");
        }
    }
    // Garbage.
    let e =
        c.verify_credential(verify_req(b"\xff{", pb::ProofPolicy::QuantumSafe)).await.unwrap_err();
    assert_eq!(reason(&e), "PARSING_ERROR");
    let mut bad_policy = verify_req(&vc, pb::ProofPolicy::QuantumSafe);
    bad_policy.proof_policy = 99;
    let e = c.verify_credential(bad_policy).await.unwrap_err();
    assert_eq!(reason(&e), "FIELD_INVALID");
    // Issue without / with a wrong token, and with a foreign issuer.
    let req = pb::IssueCredentialRequest {
        credential_json: serde_json::to_vec(&unsigned("did:example:x")).unwrap(),
        status_purposes: vec![pb::StatusPurpose::Revocation as i32],
    };
    let e = c.issue_credential(req.clone()).await.unwrap_err();
    assert_eq!(reason(&e), "AUTH_REQUIRED");
    let mut wrong = tonic::Request::new(req.clone());
    wrong.metadata_mut().insert("authorization", "Bearer nope".parse().unwrap());
    let e = c.issue_credential(wrong).await.unwrap_err();
    assert_eq!(reason(&e), "AUTH_INVALID");
    let mut foreign = unsigned("did:example:x");
    foreign["issuer"] = json!("did:example:someone-else");
    let e = c
        .issue_credential(bearer(pb::IssueCredentialRequest {
            credential_json: serde_json::to_vec(&foreign).unwrap(),
            status_purposes: vec![],
        }))
        .await
        .unwrap_err();
    assert_eq!(reason(&e), "FIELD_INVALID");
    let (status, body) = node
        .http_json(
            "POST",
            "/credentials/issue",
            &[],
            Some(&json!({"credential": unsigned("did:example:x")})),
        )
        .await;
    assert_eq!((status, body["reason"].as_str()), (401, Some("AUTH_REQUIRED")));
    // A signed external-issuer update that does not parse (external_status.rs has the rest).
    let e = c
        .update_status(pb::UpdateStatusRequest {
            update: Some(pb::update_status_request::Update::SignedUpdate(
                pb::SignedStatusListUpdate { update: vec![1], signature: vec![2] },
            )),
        })
        .await
        .unwrap_err();
    assert_eq!((e.code(), reason(&e).as_str()), (Code::InvalidArgument, "STATUS_UPDATE_MALFORMED"));
    assert_eq!(node.log_size().await, size);
}

#[tokio::test]
async fn http_issue_and_w3c_eddsa_jcs_vector() {
    let node = start().await;
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let (status, body) = node
        .http_json(
            "POST",
            "/credentials/issue",
            &[("Authorization", &auth)],
            Some(&json!({"credential": unsigned("did:example:y"), "options": {"statusPurposes": ["suspension"]}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let vc = body["verifiableCredential"].clone();
    let (status, body) = node
        .http_json("POST", "/credentials/verify", &[], Some(&json!({"verifiableCredential": vc})))
        .await;
    assert_eq!(status, 200, "{body}");

    let Some(signed) =
        atp_test_vectors::read_json("vc-di-eddsa/TestVectors/eddsa-jcs-2022/signedJCS.json")
    else {
        return;
    };
    // A lone eddsa-jcs-2022 proof (by a did:key that is not the https issuer) does not satisfy
    // the default quantum-safe policy ...
    let (status, body) = node
        .http_json(
            "POST",
            "/credentials/verify",
            &[],
            Some(&json!({"verifiableCredential": signed})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["reason"], "CRYPTOGRAPHIC_SECURITY_ERROR");
    assert_eq!(body["kind"], "CONTROLLER_MISMATCH");
    // ... and is accepted under the ANY policy.
    let any = json!({"verifiableCredential": signed, "options": {"proofPolicy": "any"}});
    let (status, body) = node.http_json("POST", "/credentials/verify", &[], Some(&any)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["credential"]["proofs"][0]["cryptosuite"], "eddsa-jcs-2022");
    // ... with the unbound issuer named as a warning, and no status check claimed.
    assert_eq!(body["warnings"][0]["title"], "ISSUER_NOT_BOUND", "{body}");
    assert_eq!(body["checks"], json!(["proof", "validityPeriod"]), "{body}");
    // A tampered copy is refused with a problem-details body.
    let mut tampered = signed.clone();
    tampered["credentialSubject"]["alumniOf"] = json!("Another School");
    let any = json!({"verifiableCredential": tampered, "options": {"proofPolicy": "any"}});
    let (status, body) = node.http_json("POST", "/credentials/verify", &[], Some(&any)).await;
    assert!(status == 400 || status == 422, "{status} {body}");
    assert_eq!(body["reason"], "CRYPTOGRAPHIC_SECURITY_ERROR");
    assert_eq!(body["code"], -65);
    // Not JSON at all.
    let (status, body) = node.http("POST", "/credentials/verify", &[], Some(b"{nope")).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn did_resolution_routes() {
    let node = start().await;
    let (status, doc) = node.http_json("GET", "/.well-known/did.json", &[], None).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["id"], json!(node.state.node_did));
    let path = format!("/1.0/identifiers/{}", node.state.node_did);
    let (status, r) = node.http_json("GET", &path, &[], None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["didDocument"]["id"], json!(node.state.node_did));
    assert_eq!(r["didDocumentMetadata"]["versionId"], "0");
    let dk = "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2";
    let (status, r) = node.http_json("GET", &format!("/1.0/identifiers/{dk}"), &[], None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["didDocument"]["id"], dk);
    let (status, r) = node
        .http_json(
            "GET",
            "/1.0/identifiers/did:atp:zQmUnknownUnknownUnknownUnknownUnknownUnknown1",
            &[],
            None,
        )
        .await;
    assert!(status == 404 || status == 400, "{status} {r}");
    let (status, r) =
        node.http_json("GET", "/1.0/identifiers/did:web:example.com", &[], None).await;
    assert_eq!(status, 501, "{r}");
    assert_eq!(r["didResolutionMetadata"]["error"], "methodNotSupported");
    let (status, _) = node.http("GET", "/status/does-not-exist", &[], None).await;
    assert_eq!(status, 404);
}
