//! The hostile-input table: hostile input through a real served node (every `atp.v1` service
//! and the HTTP routes on one port), a data-driven table of cases, each with its exact outcome
//! (gRPC code + ErrorInfo reason, or HTTP status + problem-details / resolution-error code),
//! and after each case the store and the log are unchanged (log size, identities, key events,
//! evidence, trust anchors, and the version of every status list). The one case that must
//! store something, a fork, stores exactly its evidence leaf.
//!
//! It lives here, not in one crate's tests, so that every store backend runs the same table:
//! SQLite in `crates/atp-server/tests/server/hostile.rs`, PostgreSQL in
//! `enterprise/ha/tests/postgres/hostile.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use atp_core::envelope::Envelope;
use atp_core::kel::{self, CompositeKey, Event, EventType, SignedEvent, key_commitment};
use atp_crypto::{SigningContext, SigningKey};
use atp_grpc::v1 as pb;
use atp_grpc::v1::credential_service_client::CredentialServiceClient;
use atp_grpc::v1::message_service_client::MessageServiceClient;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::{ADMIN_TOKEN, composite_key as key, reason};

mod http_cases;
mod support;
use http_cases::http_cases;
use support::*;

/// Runs the table against `node`, a fresh node with the default [`crate::NodeOptions`] apart
/// from its store.
///
/// # Panics
/// When a case's outcome differs from the table's, or a refused call stored something.
pub async fn refuses_hostile_input_and_stores_nothing(node: &crate::TestNode) {
    let node = &Target::new(node).await;
    let addr = node.addr;
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let creds = CredentialServiceClient::new(node.channel.clone());
    let msgs = MessageServiceClient::new(node.channel.clone());

    // ---- Setup (valid calls, before the table) ----------------------------------------------
    let (k0, k1, k2, k3, k9) = (key(), key(), key(), key(), key());
    let icp = kel::incept(&k0, k1.public_key_ref(), vec![], "2026-03-01T00:00:00Z").expect("icp");
    let did = format!("did:atp:{}", icp.event.scid().expect("scid"));
    node.submit(&icp).await.expect("icp");
    let s0 = kel::verify_log(std::slice::from_ref(&icp)).expect("s0");
    let rot =
        kel::rotate(&s0, &k1, k2.public_key_ref(), None, "2026-03-02T00:00:00Z").expect("rot");
    node.submit(&rot).await.expect("rot");
    let s1 = kel::verify_log(&[icp.clone(), rot.clone()]).expect("s1");

    // A valid next rotation, with a tampered signature.
    let mut bad_sig =
        kel::rotate(&s1, &k2, k3.public_key_ref(), None, "2026-03-03T00:00:00Z").expect("rot2");
    let mut sig: Vec<char> = bad_sig.sig.chars().collect();
    let mid = sig.len() / 2;
    sig[mid] = if sig[mid] == 'A' { 'B' } else { 'A' };
    bad_sig.sig = sig.into_iter().collect();
    // The right key, the wrong previous digest.
    let wrong_prev = sign(rotation(&did, 2, &icp.digest().expect("d"), &k2, &k3), &k2);
    // A rotation signed by (and revealing) a key the log never committed to.
    let wrong_key = sign(rotation(&did, 2, &s1.last_digest, &k9, &k3), &k9);
    // A replayed sequence number: chained to the head, signed by the current key, but at the
    // sequence number the head already has. It is checked as event 1 against the prefix
    // before it, so its previous digest (the head's) is the wrong one.
    let replayed_seq = sign(rotation(&did, 1, &s1.last_digest, &k2, &k3), &k2);
    // A gap in the sequence.
    let seq_gap = sign(rotation(&did, 5, &s1.last_digest, &k2, &k3), &k2);
    // A timestamp before the head's.
    let mut early = rotation(&did, 2, &s1.last_digest, &k2, &k3);
    early.ts = "2026-03-01T12:00:00Z".to_owned();
    let ts_regression = sign(early, &k2);
    // A valid rotation dated a day after the node's clock (beyond the 60 s skew): it would keep
    // the current key valid until then.
    let tomorrow =
        atp_core::vc::DateTimeStamp::from_unix(node.state.now_ms().div_euclid(1000) + 86_400);
    let future_rotation = kel::rotate(&s1, &k2, k3.public_key_ref(), None, &tomorrow.to_string())
        .expect("a rotation dated tomorrow");
    // A non-inception event naming a DID of another method.
    let wrong_method = sign(rotation("did:web:example.com", 1, &s1.last_digest, &k2, &k3), &k2);
    // A rotation of an unknown DID.
    let other = kel::incept(&k9, k3.public_key_ref(), vec![], "2026-03-01T00:00:00Z").expect("icp");
    let other_did = format!("did:atp:{}", other.event.scid().expect("scid"));
    let other_state = kel::verify_log(std::slice::from_ref(&other)).expect("other");
    let unknown = kel::rotate(&other_state, &k3, k9.public_key_ref(), None, "2026-03-02T00:00:00Z")
        .expect("rot");
    // A fork: the committed key signs a second, different rotation at sequence 1.
    let forked =
        kel::rotate(&s0, &k1, k9.public_key_ref(), None, "2026-03-02T12:00:00Z").expect("fork");

    // A deactivated identity, and an event after its deactivation.
    let (d0, d1) = (key(), key());
    let dicp = kel::incept(&d0, d1.public_key_ref(), vec![], "2026-03-01T00:00:00Z").expect("icp");
    let ddid = format!("did:atp:{}", dicp.event.scid().expect("scid"));
    node.submit(&dicp).await.expect("dicp");
    let ds0 = kel::verify_log(std::slice::from_ref(&dicp)).expect("ds0");
    let dea = kel::deactivate(&ds0, &d1, "2026-03-02T00:00:00Z").expect("dea");
    node.submit(&dea).await.expect("dea");
    let after_dea = sign(rotation(&ddid, 2, &dea.digest().expect("d"), &d1, &k3), &d1);

    // An envelope sender (incepted through the API), one good envelope, already verified once.
    let (a0, a1) = (key(), key());
    let aicp = kel::incept(&a0, a1.public_key_ref(), vec![], "2026-03-01T00:00:00Z").expect("icp");
    let alice = format!("did:atp:{}", aicp.event.scid().expect("scid"));
    node.submit(&aicp).await.expect("alice");
    let bob = "did:example:bob";
    let seal = |sender: &str, key: &SigningKey, issued_at: i64| {
        Envelope::new(
            sender,
            0,
            vec![bob.to_owned()],
            issued_at,
            issued_at + 60_000,
            "text/plain",
            b"hello".to_vec(),
        )
        .expect("envelope")
        .seal(key)
        .expect("seal")
        .to_bytes()
        .expect("bytes")
    };
    let now = now_ms();
    let seen = seal(&alice, &a0, now);
    msgs.clone()
        .verify_envelope(pb::VerifyEnvelopeRequest {
            envelope: seen.clone(),
            verifier_did: bob.into(),
        })
        .await
        .expect("a fresh envelope verifies");
    let mut forged = seal(&alice, &a0, now);
    let n = forged.len();
    forged[n - 1] ^= 1;
    let expired = seal(&alice, &a0, now - 600_000);
    let not_for_me = seal(&alice, &a0, now);
    let stranger = seal(&other_did, &k9, now);

    // Credentials: one with revocation + suspension entries, one already revoked.
    let unsigned = |subject: &str| {
        json!({
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "type": ["VerifiableCredential"],
            "validFrom": atp_core::vc::DateTimeStamp::from_unix(now / 1000 - 60).to_string(),
            "credentialSubject": {"id": subject, "role": "operator"},
        })
    };
    let issue = |purposes: Vec<pb::StatusPurpose>| {
        let mut c = creds.clone();
        let req = pb::IssueCredentialRequest {
            credential_json: serde_json::to_vec(&unsigned("did:example:agent")).unwrap(),
            status_purposes: purposes.iter().map(|p| *p as i32).collect(),
        };
        let auth = auth.clone();
        async move {
            let r =
                c.issue_credential(with_token(req, Some(&auth))).await.expect("issue").into_inner();
            (r.signed_credential_json, r.status_entries)
        }
    };
    let (vc, entries) =
        issue(vec![pb::StatusPurpose::Revocation, pb::StatusPurpose::Suspension]).await;
    let (revoked_vc, revoked_entries) = issue(vec![pb::StatusPurpose::Revocation]).await;
    let change = |entry: &pb::StatusEntryRef, action: i32| pb::UpdateStatusRequest {
        update: Some(pb::update_status_request::Update::NodeIssuer(pb::NodeIssuerStatusChange {
            entry: Some(entry.clone()),
            action,
        })),
    };
    creds
        .clone()
        .update_status(with_token(
            change(&revoked_entries[0], pb::StatusAction::Revoke as i32),
            Some(&auth),
        ))
        .await
        .expect("revoke");
    let (revocation, suspension) = (entries[0].clone(), entries[1].clone());
    assert_eq!(revocation.status_purpose, pb::StatusPurpose::Revocation as i32);
    let list_ids: Vec<String> = entries
        .iter()
        .chain(&revoked_entries)
        .map(|e| e.status_list_credential.rsplit('/').next().expect("id").to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let vc_value: Value = serde_json::from_slice(&vc).expect("vc");
    let mut tampered = vc_value.clone();
    tampered["credentialSubject"]["role"] = json!("admin");
    let mut one_proof = vc_value.clone();
    one_proof["proof"] = vc_value["proof"][0].clone();
    let verify = |bytes: Vec<u8>, policy: i32| pb::VerifyCredentialRequest {
        credential_json: bytes,
        proof_policy: policy,
        allow_unchecked_status: false,
    };
    let qs = pb::ProofPolicy::QuantumSafe as i32;

    let anchors = pb::SetTrustAnchorsRequest {
        anchors: vec![pb::TrustAnchor { did: did.clone(), note: "test".into() }],
        expected_revision: None,
    };

    // ---- The table ----------------------------------------------------------------------------
    macro_rules! rpc {
        ($client:expr, $method:ident, $req:expr) => {{
            let mut c = $client;
            let req = $req;
            async move { grpc(c.$method(req).await) }
        }};
    }
    let ev = |e: &SignedEvent| pb::SubmitEventRequest {
        signed_event_json: e.canonical_bytes().expect("json"),
    };
    let raw = |b: Vec<u8>| pb::SubmitEventRequest { signed_event_json: b };
    let id = || node.identity();
    let log = || node.log();
    let admin = || node.admin();
    let cr = || creds.clone();
    let ms = || msgs.clone();
    let env = |e: &[u8], me: &str| pb::VerifyEnvelopeRequest {
        envelope: e.to_vec(),
        verifier_did: me.to_owned(),
    };
    let leaf = |l: pb::get_inclusion_proof_request::Leaf, size: u64| pb::GetInclusionProofRequest {
        leaf: Some(l),
        tree_size: size,
    };
    use pb::get_inclusion_proof_request::Leaf;
    let ia = Code::InvalidArgument;

    let unsigned_x = unsigned("did:example:x");
    let mut cases: Vec<Case<'_>> = vec![
        // IdentityService.SubmitEvent
        case(
            "kel: bad signature",
            g(ia, "KEL_BAD_SIGNATURE"),
            rpc!(id(), submit_event, ev(&bad_sig)),
        ),
        case(
            "kel: wrong prev hash",
            g(ia, "KEL_BROKEN_HASH_LINK"),
            rpc!(id(), submit_event, ev(&wrong_prev)),
        ),
        case(
            "kel: rotation signed by the wrong key",
            g(ia, "KEL_ROTATION_NOT_COMMITTED"),
            rpc!(id(), submit_event, ev(&wrong_key)),
        ),
        case(
            "kel: replayed seq",
            g(ia, "KEL_BROKEN_HASH_LINK"),
            rpc!(id(), submit_event, ev(&replayed_seq)),
        ),
        case("kel: seq gap", g(ia, "KEL_BAD_SEQUENCE"), rpc!(id(), submit_event, ev(&seq_gap))),
        case(
            "kel: timestamp regression",
            g(ia, "KEL_TIMESTAMP_REGRESSION"),
            rpc!(id(), submit_event, ev(&ts_regression)),
        ),
        case(
            "kel: timestamp later than the node's clock plus skew",
            g(ia, "KEL_TIMESTAMP_IN_FUTURE"),
            rpc!(id(), submit_event, ev(&future_rotation)),
        ),
        case(
            "kel: DID of the wrong method in d",
            g(ia, "DID_METHOD_NOT_SUPPORTED"),
            rpc!(id(), submit_event, ev(&wrong_method)),
        ),
        case(
            "kel: event after deactivation",
            g(ia, "KEL_EVENT_AFTER_DEACTIVATION"),
            rpc!(id(), submit_event, ev(&after_dea)),
        ),
        case(
            "kel: unknown DID",
            g(Code::NotFound, "DID_NOT_FOUND"),
            rpc!(id(), submit_event, ev(&unknown)),
        ),
        case(
            "kel: garbage bytes",
            g(ia, "KEL_MALFORMED"),
            rpc!(id(), submit_event, raw(b"\xff\xfe\x00garbage{".to_vec())),
        ),
        case("kel: empty", g(ia, "KEL_MALFORMED"), rpc!(id(), submit_event, raw(Vec::new()))),
        case(
            "kel: oversized event",
            g(ia, "KEL_LIMIT"),
            rpc!(id(), submit_event, raw(vec![b' '; 300_000])),
        ),
        case(
            // Above the 4 MiB message limit: refused by the transport, so by its gRPC code only
            // (proto/README.md: such statuses carry no ATP ErrorInfo).
            "grpc: message above the node's limit",
            Outcome::Grpc(Code::OutOfRange, None),
            rpc!(id(), submit_event, raw(vec![b' '; 5 << 20])),
        ),
        Case {
            stores_evidence: true,
            ..case("kel: fork", g(ia, "KEL_FORK"), rpc!(id(), submit_event, ev(&forked)))
        },
        // IdentityService reads
        case(
            "resolve: wrong DID method",
            g(ia, "DID_METHOD_NOT_SUPPORTED"),
            rpc!(
                id(),
                resolve,
                pb::ResolveRequest { did: "did:web:example.com".into(), version_id: None }
            ),
        ),
        case(
            "resolve: not a DID",
            g(ia, "DID_INVALID"),
            rpc!(id(), resolve, pb::ResolveRequest { did: "hello".into(), version_id: None }),
        ),
        case(
            "resolve: empty DID",
            g(ia, "FIELD_INVALID"),
            rpc!(id(), resolve, pb::ResolveRequest { did: String::new(), version_id: None }),
        ),
        case(
            "resolve: unknown did:atp",
            g(Code::NotFound, "DID_NOT_FOUND"),
            rpc!(id(), resolve, pb::ResolveRequest { did: other_did.clone(), version_id: None }),
        ),
        case(
            "resolve: version beyond the log",
            g(Code::NotFound, "DID_VERSION_NOT_FOUND"),
            rpc!(id(), resolve, pb::ResolveRequest { did: did.clone(), version_id: Some(7) }),
        ),
        case(
            "kel: did:key has no log",
            g(ia, "DID_METHOD_NOT_SUPPORTED"),
            rpc!(
                id(),
                get_key_event_log,
                pb::GetKeyEventLogRequest {
                    did: "did:key:z6Mk".into(),
                    from_sequence: 0,
                    page_size: 0
                }
            ),
        ),
        case(
            "list: forged page token",
            g(ia, "PAGE_TOKEN_INVALID"),
            rpc!(
                id(),
                list_identities,
                pb::ListIdentitiesRequest { page_size: 1, page_token: "not-a-token".into() }
            ),
        ),
        // LogService
        case(
            "log: inclusion without a leaf",
            g(ia, "FIELD_INVALID"),
            rpc!(
                log(),
                get_inclusion_proof,
                pb::GetInclusionProofRequest { leaf: None, tree_size: 0 }
            ),
        ),
        case(
            "log: short leaf hash",
            g(ia, "FIELD_INVALID"),
            rpc!(log(), get_inclusion_proof, leaf(Leaf::LeafHash(vec![1; 5]), 0)),
        ),
        case(
            "log: unknown leaf hash",
            g(Code::NotFound, "TLOG_LEAF_NOT_FOUND"),
            rpc!(log(), get_inclusion_proof, leaf(Leaf::LeafHash(vec![7; 32]), 0)),
        ),
        case(
            "log: leaf index out of range",
            g(Code::OutOfRange, "TLOG_INDEX_OUT_OF_RANGE"),
            rpc!(log(), get_inclusion_proof, leaf(Leaf::LeafIndex(1 << 40), 0)),
        ),
        case(
            "log: tree size beyond the checkpoint",
            g(Code::OutOfRange, "TLOG_TREE_SIZE_UNAVAILABLE"),
            rpc!(log(), get_inclusion_proof, leaf(Leaf::LeafIndex(0), 1 << 40)),
        ),
        case(
            "log: consistency sizes out of order",
            g(ia, "TLOG_CONSISTENCY_SIZE_ORDER"),
            rpc!(
                log(),
                get_consistency_proof,
                pb::GetConsistencyProofRequest { first_tree_size: 0, second_tree_size: 0 }
            ),
        ),
        case(
            "log: entries beyond the log",
            g(Code::OutOfRange, "TLOG_INDEX_OUT_OF_RANGE"),
            rpc!(log(), get_entries, pb::GetEntriesRequest { start_index: 1 << 40, page_size: 0 }),
        ),
        // AdminService
        case(
            "admin: set anchors without a token",
            g(Code::Unauthenticated, "AUTH_REQUIRED"),
            rpc!(admin(), set_trust_anchors, with_token(anchors.clone(), None)),
        ),
        case(
            "admin: set anchors with a wrong token",
            g(Code::Unauthenticated, "AUTH_INVALID"),
            rpc!(
                admin(),
                set_trust_anchors,
                with_token(anchors.clone(), Some("Bearer not-the-token"))
            ),
        ),
        case(
            "admin: set anchors with a non-bearer scheme",
            g(Code::Unauthenticated, "AUTH_INVALID"),
            rpc!(admin(), set_trust_anchors, with_token(anchors.clone(), Some("Basic abc"))),
        ),
        case(
            "admin: list anchors without a token",
            g(Code::Unauthenticated, "AUTH_REQUIRED"),
            rpc!(admin(), list_trust_anchors, with_token(pb::ListTrustAnchorsRequest {}, None)),
        ),
        case(
            "admin: list anchors with a wrong token",
            g(Code::Unauthenticated, "AUTH_INVALID"),
            rpc!(
                admin(),
                list_trust_anchors,
                with_token(pb::ListTrustAnchorsRequest {}, Some("Bearer not-the-token"))
            ),
        ),
        case(
            "admin: recompute trust without a token",
            g(Code::Unauthenticated, "AUTH_REQUIRED"),
            rpc!(admin(), recompute_trust, with_token(pb::RecomputeTrustRequest {}, None)),
        ),
        case(
            "admin: trust config with a wrong token",
            g(Code::Unauthenticated, "AUTH_INVALID"),
            rpc!(
                admin(),
                get_trust_config,
                with_token(pb::GetTrustConfigRequest {}, Some("Bearer not-the-token"))
            ),
        ),
        case(
            "admin: duplicate anchors",
            g(ia, "FIELD_INVALID"),
            rpc!(
                admin(),
                set_trust_anchors,
                with_token(
                    pb::SetTrustAnchorsRequest {
                        anchors: vec![anchors.anchors[0].clone(), anchors.anchors[0].clone()],
                        expected_revision: None,
                    },
                    Some(&auth)
                )
            ),
        ),
        case(
            "admin: anchor of the wrong DID method",
            g(ia, "DID_METHOD_NOT_SUPPORTED"),
            rpc!(
                admin(),
                set_trust_anchors,
                with_token(
                    pb::SetTrustAnchorsRequest {
                        anchors: vec![pb::TrustAnchor {
                            did: "did:web:example.com".into(),
                            note: String::new()
                        }],
                        expected_revision: None,
                    },
                    Some(&auth)
                )
            ),
        ),
        case(
            "admin: stale anchor revision",
            g(Code::FailedPrecondition, "TRUST_ANCHORS_REVISION_MISMATCH"),
            rpc!(
                admin(),
                set_trust_anchors,
                with_token(
                    pb::SetTrustAnchorsRequest { expected_revision: Some(5), ..anchors.clone() },
                    Some(&auth)
                )
            ),
        ),
        // CredentialService
        case(
            "vc: tampered credential",
            g(ia, "CRYPTOGRAPHIC_SECURITY_ERROR"),
            rpc!(cr(), verify_credential, verify(serde_json::to_vec(&tampered).unwrap(), qs)),
        ),
        case(
            "vc: proof set with a proof missing",
            g(ia, "CRYPTOGRAPHIC_SECURITY_ERROR"),
            rpc!(cr(), verify_credential, verify(serde_json::to_vec(&one_proof).unwrap(), qs)),
        ),
        case(
            "vc: garbage bytes",
            g(ia, "PARSING_ERROR"),
            rpc!(cr(), verify_credential, verify(b"\xff{".to_vec(), qs)),
        ),
        case(
            "vc: unknown ProofPolicy value",
            g(ia, "FIELD_INVALID"),
            rpc!(cr(), verify_credential, verify(vc.clone(), 99)),
        ),
        case(
            "vc: revoked credential",
            g(ia, "CREDENTIAL_REVOKED"),
            rpc!(cr(), verify_credential, verify(revoked_vc.clone(), qs)),
        ),
        case(
            "vc: issue without a token",
            g(Code::Unauthenticated, "AUTH_REQUIRED"),
            rpc!(
                cr(),
                issue_credential,
                pb::IssueCredentialRequest {
                    credential_json: serde_json::to_vec(&unsigned("did:example:x")).unwrap(),
                    status_purposes: vec![],
                }
            ),
        ),
        case(
            "vc: issue with a wrong token",
            g(Code::Unauthenticated, "AUTH_INVALID"),
            rpc!(
                cr(),
                issue_credential,
                with_token(
                    pb::IssueCredentialRequest {
                        credential_json: serde_json::to_vec(&unsigned("did:example:x")).unwrap(),
                        status_purposes: vec![],
                    },
                    Some("Bearer nope")
                )
            ),
        ),
        case(
            "vc: issue with an unknown StatusPurpose value",
            g(ia, "FIELD_INVALID"),
            rpc!(
                cr(),
                issue_credential,
                with_token(
                    pb::IssueCredentialRequest {
                        credential_json: serde_json::to_vec(&unsigned("did:example:x")).unwrap(),
                        status_purposes: vec![42],
                    },
                    Some(&auth)
                )
            ),
        ),
        case(
            "vc: issue as a foreign issuer",
            g(ia, "FIELD_INVALID"),
            rpc!(cr(), issue_credential, {
                let mut foreign = unsigned("did:example:x");
                foreign["issuer"] = json!("did:example:someone-else");
                with_token(
                    pb::IssueCredentialRequest {
                        credential_json: serde_json::to_vec(&foreign).unwrap(),
                        status_purposes: vec![],
                    },
                    Some(&auth),
                )
            }),
        ),
        case(
            "status: update from a non-issuer (no token)",
            g(Code::Unauthenticated, "AUTH_REQUIRED"),
            rpc!(cr(), update_status, change(&revocation, pb::StatusAction::Revoke as i32)),
        ),
        case(
            "status: update with a wrong token",
            g(Code::Unauthenticated, "AUTH_INVALID"),
            rpc!(
                cr(),
                update_status,
                with_token(
                    change(&revocation, pb::StatusAction::Revoke as i32),
                    Some("Bearer not-the-token")
                )
            ),
        ),
        case(
            "status: unknown StatusAction value",
            g(ia, "FIELD_INVALID"),
            rpc!(cr(), update_status, with_token(change(&revocation, 99), Some(&auth))),
        ),
        case(
            "status: unspecified StatusAction",
            g(ia, "FIELD_INVALID"),
            rpc!(cr(), update_status, with_token(change(&revocation, 0), Some(&auth))),
        ),
        case(
            "status: unknown StatusPurpose value in the entry",
            g(ia, "FIELD_INVALID"),
            rpc!(
                cr(),
                update_status,
                with_token(
                    change(
                        &pb::StatusEntryRef { status_purpose: 77, ..revocation.clone() },
                        pb::StatusAction::Revoke as i32
                    ),
                    Some(&auth)
                )
            ),
        ),
        case(
            "status: no update",
            g(ia, "FIELD_INVALID"),
            rpc!(
                cr(),
                update_status,
                with_token(pb::UpdateStatusRequest { update: None }, Some(&auth))
            ),
        ),
        case(
            "status: list this node does not host",
            g(Code::NotFound, "STATUS_LIST_NOT_FOUND"),
            rpc!(
                cr(),
                update_status,
                with_token(
                    change(
                        &pb::StatusEntryRef {
                            status_list_credential: "https://elsewhere.example/status/1".into(),
                            ..revocation.clone()
                        },
                        pb::StatusAction::Revoke as i32
                    ),
                    Some(&auth)
                )
            ),
        ),
        case(
            "status: suspend a revocation entry",
            g(ia, "STATUS_LIST_PURPOSE_MISMATCH"),
            rpc!(
                cr(),
                update_status,
                with_token(change(&revocation, pb::StatusAction::Suspend as i32), Some(&auth))
            ),
        ),
        case(
            "status: reinstate a revoked entry",
            g(ia, "STATUS_LIST_PURPOSE_MISMATCH"),
            rpc!(
                cr(),
                update_status,
                with_token(
                    change(&revoked_entries[0], pb::StatusAction::Reinstate as i32),
                    Some(&auth)
                )
            ),
        ),
        case(
            "status: revoke a suspension entry",
            g(ia, "STATUS_LIST_PURPOSE_MISMATCH"),
            rpc!(
                cr(),
                update_status,
                with_token(change(&suspension, pb::StatusAction::Revoke as i32), Some(&auth))
            ),
        ),
        case(
            "status: get a list this node does not host",
            g(Code::NotFound, "STATUS_LIST_NOT_FOUND"),
            rpc!(
                cr(),
                get_status_list,
                pb::GetStatusListRequest {
                    status_list_credential: "http://127.0.0.1/status/nope".into()
                }
            ),
        ),
        // MessageService
        case(
            "envelope: bad signature",
            g(ia, "ENVELOPE_BAD_SIGNATURE"),
            rpc!(ms(), verify_envelope, env(&forged, bob)),
        ),
        case(
            "envelope: expired",
            g(ia, "ENVELOPE_EXPIRED"),
            rpc!(ms(), verify_envelope, env(&expired, bob)),
        ),
        case(
            "envelope: replayed",
            g(ia, "ENVELOPE_REPLAY"),
            rpc!(ms(), verify_envelope, env(&seen, bob)),
        ),
        case(
            "envelope: garbage bytes",
            g(ia, "ENVELOPE_MALFORMED"),
            rpc!(ms(), verify_envelope, env(b"garbage", bob)),
        ),
        case(
            "envelope: not for this verifier",
            g(ia, "ENVELOPE_NOT_FOR_ME"),
            rpc!(ms(), verify_envelope, env(&not_for_me, "did:example:carol")),
        ),
        case(
            "envelope: unknown sender",
            g(ia, "ENVELOPE_UNKNOWN_SENDER"),
            rpc!(ms(), verify_envelope, env(&stranger, bob)),
        ),
        case(
            "envelope: no verifier DID",
            g(ia, "FIELD_INVALID"),
            rpc!(ms(), verify_envelope, env(&not_for_me, "")),
        ),
        case(
            "session: challenge for a DID of the wrong method",
            g(ia, "DID_METHOD_NOT_SUPPORTED"),
            rpc!(
                ms(),
                create_challenge,
                pb::CreateChallengeRequest {
                    did: "did:web:x".into(),
                    audience: "https://s.example".into()
                }
            ),
        ),
        case(
            "session: malformed authentication",
            g(ia, "SESSION_MALFORMED"),
            rpc!(
                ms(),
                authenticate,
                pb::AuthenticateRequest {
                    authentication: [&atp_core::session::AUTH_MAGIC[..], b"xx"].concat(),
                    signature: vec![1]
                }
            ),
        ),
    ];
    cases.extend(http_cases(addr, &vc_value, &tampered, &revoked_vc, &unsigned_x, &other_did));
    assert!(cases.len() >= 40, "the table has {} cases", cases.len());
    let mut names = std::collections::BTreeSet::new();
    for c in &cases {
        assert!(names.insert(c.name), "duplicate case name {}", c.name);
    }
    eprintln!("hostile input table: {} cases", cases.len());

    let mut failures = Vec::new();
    for Case { name, want, run, stores_evidence } in cases.drain(..) {
        let before = snapshot(node, &list_ids).await;
        let got = run.await;
        let after = snapshot(node, &list_ids).await;
        let expected_after = if stores_evidence {
            Snapshot {
                log_size: before.log_size + 1,
                evidence: before.evidence + 1,
                ..before.clone()
            }
        } else {
            before.clone()
        };
        if got != want {
            failures.push(format!("{name}: got {got:?}, want {want:?}"));
        }
        if after != expected_after {
            failures.push(format!("{name}: the store changed: {before:?} -> {after:?}"));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));

    // The forked log is unchanged; the fork is on record.
    assert_eq!(node.state.store.get_kel(&did).await.expect("kel").len(), 2);
    // The same fork again is refused the same way, and its evidence is not recorded twice.
    let before = snapshot(node, &list_ids).await;
    let again = node.submit(&forked).await.expect_err("a fork is refused");
    assert_eq!(reason(&again), "KEL_FORK", "{again:?}");
    assert_eq!(snapshot(node, &list_ids).await, before, "a replayed fork stored something");
    // A replayed (identical) event is a duplicate: success, nothing stored.
    let before = snapshot(node, &list_ids).await;
    let r = node.submit(&rot).await.expect("replay");
    assert_eq!(r.outcome, pb::SubmitEventOutcome::Duplicate as i32);
    assert_eq!(snapshot(node, &list_ids).await, before, "a duplicate stored something");

    // And the right token works, logging one leaf.
    let ok = node
        .admin()
        .set_trust_anchors(with_token(
            pb::SetTrustAnchorsRequest { expected_revision: Some(0), ..anchors },
            Some(&auth),
        ))
        .await
        .expect("admin call")
        .into_inner();
    assert_eq!(ok.revision, 1);
    assert_eq!(node.counts().await, (before.log_size + 1, before.identities));
    let listed = node
        .admin()
        .list_trust_anchors(with_token(pb::ListTrustAnchorsRequest {}, Some(&auth)))
        .await
        .expect("list")
        .into_inner();
    assert_eq!((listed.revision, listed.anchors.len()), (1, 1));
}
