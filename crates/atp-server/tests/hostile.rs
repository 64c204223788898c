//! Hostile input to IdentityService, LogService and AdminService: each case gets its exact
//! reason code, and nothing is stored (log size and identity count unchanged; a fork stores
//! exactly its evidence leaf).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use atp_core::kel::{self, CompositeKey, Event, EventType, SignedEvent, key_commitment};
use atp_crypto::{SigningContext, SigningKey};
use atp_grpc::v1 as pb;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ADMIN_TOKEN, TestNode, key, reason};
use tonic::Code;

/// Signs an arbitrary event body with `key` (what an attacker can do).
fn sign(event: Event, key: &SigningKey) -> SignedEvent {
    let sig = key
        .sign(&event.canonical_bytes().expect("jcs"), SigningContext::Kel.as_bytes())
        .expect("sign");
    SignedEvent { event, sig: URL_SAFE_NO_PAD.encode(sig) }
}

/// A rotation body after `prev` at sequence `s`, revealing `k` and committing to `next`.
fn rotation(did: &str, s: u64, prev: &str, k: &SigningKey, next: &SigningKey) -> Event {
    Event {
        v: kel::EVENT_VERSION.to_owned(),
        t: EventType::Rotation,
        d: Some(did.to_owned()),
        s,
        p: Some(prev.to_owned()),
        k: Some(CompositeKey::from_public_key(k.public_key_ref()).expect("key")),
        n: Some(key_commitment(next.public_key_ref()).expect("commitment")),
        services: None,
        ts: "2026-03-02T00:00:00Z".to_owned(),
    }
}

fn with_token<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(t) = token {
        req.metadata_mut().insert("authorization", t.parse().expect("ascii"));
    }
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_precisely_and_stores_nothing() {
    let node = TestNode::start().await;
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
    // A rotation of an unknown DID.
    let other = kel::incept(&k9, k3.public_key_ref(), vec![], "2026-03-01T00:00:00Z").expect("icp");
    let other_state = kel::verify_log(std::slice::from_ref(&other)).expect("other");
    let unknown = kel::rotate(&other_state, &k3, k9.public_key_ref(), None, "2026-03-02T00:00:00Z")
        .expect("rot");

    let json = |e: &SignedEvent| e.canonical_bytes().expect("json");
    let submit_cases: Vec<(&str, Vec<u8>, Code, &str)> = vec![
        ("bad signature", json(&bad_sig), Code::InvalidArgument, "KEL_BAD_SIGNATURE"),
        ("wrong prev hash", json(&wrong_prev), Code::InvalidArgument, "KEL_BROKEN_HASH_LINK"),
        (
            "rotation by the wrong key",
            json(&wrong_key),
            Code::InvalidArgument,
            "KEL_ROTATION_NOT_COMMITTED",
        ),
        ("unknown DID", json(&unknown), Code::NotFound, "DID_NOT_FOUND"),
        ("garbage bytes", b"\xff\xfe\x00garbage{".to_vec(), Code::InvalidArgument, "KEL_MALFORMED"),
        ("empty", Vec::new(), Code::InvalidArgument, "KEL_MALFORMED"),
        ("oversized event", vec![b' '; 300_000], Code::InvalidArgument, "KEL_LIMIT"),
    ];
    for (name, bytes, code, want) in submit_cases {
        let before = node.counts().await;
        let e = node.submit_bytes(bytes).await.expect_err(name);
        assert_eq!((e.code(), reason(&e).as_str()), (code, want), "{name}: {e:?}");
        assert_eq!(node.counts().await, before, "{name}: something was stored");
    }

    // A replayed event is a duplicate: success, nothing stored.
    let before = node.counts().await;
    let r = node.submit(&rot).await.expect("replay");
    assert_eq!(r.outcome, pb::SubmitEventOutcome::Duplicate as i32);
    assert_eq!(node.counts().await, before, "replay stored something");

    // A fork: the committed key signs a second, different rotation at sequence 1. Refused,
    // with its evidence recorded as exactly one log leaf; no identity or event changes.
    let forked =
        kel::rotate(&s0, &k1, k9.public_key_ref(), None, "2026-03-02T12:00:00Z").expect("fork");
    let before = node.counts().await;
    let e = node.submit(&forked).await.expect_err("fork");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::InvalidArgument, "KEL_FORK"), "{e:?}");
    let after = node.counts().await;
    assert_eq!(after, (before.0 + 1, before.1), "a fork stores exactly its evidence leaf");
    assert_eq!(node.state.store.stats().await.expect("stats").evidence, 1);
    let kel = node.state.store.get_kel(&did).await.expect("kel");
    assert_eq!(kel.len(), 2, "the stored log is unchanged");

    // Resolve and GetKeyEventLog.
    let resolve_cases: Vec<(&str, pb::ResolveRequest, Code, &str)> = vec![
        (
            "wrong DID method",
            pb::ResolveRequest { did: "did:web:example.com".into(), version_id: None },
            Code::InvalidArgument,
            "DID_METHOD_NOT_SUPPORTED",
        ),
        (
            "not a DID",
            pb::ResolveRequest { did: "hello".into(), version_id: None },
            Code::InvalidArgument,
            "DID_INVALID",
        ),
        (
            "empty DID",
            pb::ResolveRequest { did: String::new(), version_id: None },
            Code::InvalidArgument,
            "FIELD_INVALID",
        ),
        (
            "unknown did:atp",
            pb::ResolveRequest {
                did: format!("did:atp:{}", other.event.scid().expect("scid")),
                version_id: None,
            },
            Code::NotFound,
            "DID_NOT_FOUND",
        ),
        (
            "version beyond the log",
            pb::ResolveRequest { did: did.clone(), version_id: Some(7) },
            Code::NotFound,
            "DID_VERSION_NOT_FOUND",
        ),
    ];
    for (name, req, code, want) in resolve_cases {
        let before = node.counts().await;
        let e = node.identity().resolve(req).await.expect_err(name);
        assert_eq!((e.code(), reason(&e).as_str()), (code, want), "{name}: {e:?}");
        assert_eq!(node.counts().await, before);
    }
    let e = node
        .identity()
        .get_key_event_log(pb::GetKeyEventLogRequest {
            did: "did:key:z6Mk".into(),
            from_sequence: 0,
            page_size: 0,
        })
        .await
        .expect_err("did:key has no KEL");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = node
        .identity()
        .list_identities(pb::ListIdentitiesRequest {
            page_size: 1,
            page_token: "not-a-token".into(),
        })
        .await
        .expect_err("bad token");
    assert_eq!(reason(&e), "PAGE_TOKEN_INVALID", "{e:?}");

    // LogService. (The atp.v1 requests of these three services carry no enum field; the
    // closest "unknown value" case is a missing oneof, refused with FIELD_INVALID.)
    let log = node.log();
    let e = log
        .clone()
        .get_inclusion_proof(pb::GetInclusionProofRequest { leaf: None, tree_size: 0 })
        .await
        .expect_err("no leaf");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::InvalidArgument, "FIELD_INVALID"));
    let e = log
        .clone()
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafHash(vec![1; 5])),
            tree_size: 0,
        })
        .await
        .expect_err("short hash");
    assert_eq!(reason(&e), "FIELD_INVALID");
    let e = log
        .clone()
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafHash(vec![7; 32])),
            tree_size: 0,
        })
        .await
        .expect_err("unknown hash");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::NotFound, "TLOG_LEAF_NOT_FOUND"));
    let e = log
        .clone()
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafIndex(1 << 40)),
            tree_size: 0,
        })
        .await
        .expect_err("index");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::OutOfRange, "TLOG_INDEX_OUT_OF_RANGE"));
    let e = log
        .clone()
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafIndex(0)),
            tree_size: 1 << 40,
        })
        .await
        .expect_err("size");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::OutOfRange, "TLOG_TREE_SIZE_UNAVAILABLE"));
    let e = log
        .clone()
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first_tree_size: 0,
            second_tree_size: 0,
        })
        .await
        .expect_err("order");
    assert_eq!(
        (e.code(), reason(&e).as_str()),
        (Code::InvalidArgument, "TLOG_CONSISTENCY_SIZE_ORDER")
    );
    let e = log
        .clone()
        .get_entries(pb::GetEntriesRequest { start_index: 1 << 40, page_size: 0 })
        .await
        .expect_err("entries");
    assert_eq!((e.code(), reason(&e).as_str()), (Code::OutOfRange, "TLOG_INDEX_OUT_OF_RANGE"));

    // AdminService: without a token, with a wrong one, with a malformed header.
    let anchors = pb::SetTrustAnchorsRequest {
        anchors: vec![pb::TrustAnchor { did: did.clone(), note: "test".into() }],
        expected_revision: None,
    };
    for (name, token, want) in [
        ("no token", None, "AUTH_REQUIRED"),
        ("wrong token", Some("Bearer not-the-token"), "AUTH_INVALID"),
        ("not a bearer", Some("Basic abc"), "AUTH_INVALID"),
    ] {
        let before = node.counts().await;
        let e = node
            .admin()
            .set_trust_anchors(with_token(anchors.clone(), token))
            .await
            .expect_err(name);
        assert_eq!((e.code(), reason(&e).as_str()), (Code::Unauthenticated, want), "{name}: {e:?}");
        let e = node
            .admin()
            .list_trust_anchors(with_token(pb::ListTrustAnchorsRequest {}, token))
            .await
            .expect_err(name);
        assert_eq!(reason(&e), want, "{name}");
        assert_eq!(node.counts().await, before, "{name}: something was stored");
    }
    // Invalid anchors with the right token: refused, nothing stored.
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let before = node.counts().await;
    let dup = pb::SetTrustAnchorsRequest {
        anchors: vec![anchors.anchors[0].clone(), anchors.anchors[0].clone()],
        expected_revision: None,
    };
    let e = node.admin().set_trust_anchors(with_token(dup, Some(&auth))).await.expect_err("dup");
    assert_eq!(reason(&e), "FIELD_INVALID");
    let web = pb::SetTrustAnchorsRequest {
        anchors: vec![pb::TrustAnchor { did: "did:web:example.com".into(), note: String::new() }],
        expected_revision: None,
    };
    let e = node.admin().set_trust_anchors(with_token(web, Some(&auth))).await.expect_err("web");
    assert_eq!(reason(&e), "DID_METHOD_NOT_SUPPORTED");
    let stale = pb::SetTrustAnchorsRequest { expected_revision: Some(5), ..anchors.clone() };
    let e =
        node.admin().set_trust_anchors(with_token(stale, Some(&auth))).await.expect_err("stale");
    assert_eq!(
        (e.code(), reason(&e).as_str()),
        (Code::FailedPrecondition, "TRUST_ANCHORS_REVISION_MISMATCH")
    );
    assert_eq!(node.counts().await, before);

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
    assert_eq!(node.counts().await, (before.0 + 1, before.1));
    let listed = node
        .admin()
        .list_trust_anchors(with_token(pb::ListTrustAnchorsRequest {}, Some(&auth)))
        .await
        .expect("list")
        .into_inner();
    assert_eq!((listed.revision, listed.anchors.len()), (1, 1));

    node.stop().await;
}
