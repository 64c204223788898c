//! The key event logs, the transparency log against `atp_core::tlog`, checkpoints, status
//! lists, anchors, metadata, pagination, races between two stores on one database, and rejected
//! writes that store nothing.

use std::collections::BTreeSet;
use std::sync::Arc;

use atp_core::checkpoint::{Checkpoint, sign_note};
use atp_core::kel;
use atp_core::log_entry::{entry_leaf_hash, evidence_data_hash, kel_data_hash};
use atp_core::status_list::StatusPurpose;
use atp_core::tlog::{self, EMPTY_ROOT, MerkleAccumulator};
use atp_crypto::{AlgorithmId, SigningKey};
use atp_store::{
    KelHead, LeafKind, NewEvidence, NewSignedStatusUpdate, NewStatusList, Store, StoreError,
};

use crate::Backend;
use crate::support::{self as common, Ident, deactivation, incept, keys, rotation};

/// The error code of a result that must be an error.
pub fn code<T: std::fmt::Debug>(r: Result<T, StoreError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

/// The `i`-th piece of test evidence (seven subjects in turn).
pub fn evidence(i: usize) -> NewEvidence {
    NewEvidence {
        subject: format!("did:atp:subject{}", i % 7),
        evidence_type: "endorsement".into(),
        body: format!("evidence body {i}").into_bytes(),
    }
}

/// Checks every stored leaf against its kind and data hash, and the stored root against one
/// recomputed from the leaves; returns the leaf hashes.
pub async fn check_log(store: &dyn Store) -> Vec<tlog::Hash> {
    let size = store.log_size().await.unwrap();
    let mut leaves = Vec::new();
    while (leaves.len() as u64) < size {
        let page = store.get_entries(leaves.len() as u64, 1000).await.unwrap();
        assert!(!page.is_empty());
        for e in page {
            assert_eq!(e.index, leaves.len() as u64);
            assert!(e.is_consistent(), "leaf {} does not match its kind and data", e.index);
            leaves.push(e.leaf_hash);
        }
    }
    assert_eq!(store.root_at(size).await.unwrap(), tlog::root_from_leaf_hashes(&leaves));
    leaves
}

/// Kel lifecycle append and read.
pub async fn kel_lifecycle_append_and_read(backend: &dyn Backend) {
    let store = backend.open().await;
    let k = keys(4);
    let mut id = incept(&k, "lifecycle");

    assert!(store.get_kel(&id.did).await.unwrap().is_empty());
    assert_eq!(store.get_identity(&id.did).await.unwrap(), None);

    let a0 = store.append_kel_event(id.inception()).await.unwrap();
    assert_eq!((a0.sequence, a0.log_index), (0, 0));
    assert_eq!(a0.digest, id.events[0].digest().unwrap());

    let rot = rotation(&id, &k, 1, 2, "rot1");
    let a1 = store.append_kel_event(id.accept(rot.clone())).await.unwrap();
    id.push(rot);
    assert_eq!((a1.sequence, a1.log_index), (1, 1));

    let dea = deactivation(&id, &k, 2);
    let a2 = store.append_kel_event(id.accept(dea.clone())).await.unwrap();
    id.push(dea);
    assert_eq!(a2.sequence, 2);

    // The stored log is exactly what was appended, and verifies.
    let stored = store.get_kel(&id.did).await.unwrap();
    let events: Vec<_> = stored.iter().map(|s| s.event.clone()).collect();
    assert_eq!(events, id.events);
    let state = kel::verify_log(&events).unwrap();
    assert_eq!(state.did, id.did);
    assert!(state.deactivated);
    for (i, s) in stored.iter().enumerate() {
        assert_eq!(s.sequence, i as u64);
        assert_eq!(s.digest, s.event.digest().unwrap());
        // The event's leaf commits to exactly its canonical bytes.
        let entry = &store.get_entries(s.log_index, 1).await.unwrap()[0];
        assert_eq!(entry.kind, LeafKind::Kel);
        assert_eq!(entry.data_hash, kel_data_hash(&s.event).unwrap());
        assert_eq!(entry.reference.as_deref(), Some(&*format!("{}?versionId={i}", id.did)));
    }
    assert_eq!(store.get_kel_event(&id.did, 1).await.unwrap().unwrap(), stored[1]);
    assert_eq!(store.get_kel_event(&id.did, 3).await.unwrap(), None);

    let rec = store.get_identity(&id.did).await.unwrap().unwrap();
    assert_eq!(rec.head(), KelHead::of(&state));
    assert!(rec.deactivated);
    assert_eq!(rec.created, common::T0);
    assert_eq!(rec.updated, id.events[2].event.ts);
    assert_eq!(store.identity_count().await.unwrap(), 1);

    // Nothing follows a deactivation: atp-core refuses to accept it, so no such event can reach
    // the store (an AcceptedEvent comes only from atp-core).
    let after = id.events[1].clone();
    let refused = kel::KeyEventLog::default().accept(&id.did, Some(&id.state), after);
    assert_eq!(refused.unwrap_err().code(), "KEL_EVENT_AFTER_DEACTIVATION");
    check_log(&*store).await;
    store.close().await.unwrap();
}

/// Stale head is a conflict and stores nothing.
pub async fn stale_head_is_a_conflict_and_stores_nothing(backend: &dyn Backend) {
    let store = backend.open().await;
    let k = keys(4);
    let mut id = incept(&k, "conflict");
    store.append_kel_event(id.inception()).await.unwrap();
    let head0 = id.head();

    // A second inception of the same DID: the DID exists.
    match store.append_kel_event(id.inception()).await {
        Err(StoreError::Conflict { expected: None, found: Some(found), .. }) => {
            assert_eq!(found, head0)
        }
        other => panic!("{other:?}"),
    }

    // Two rotations, both accepted by atp-core against head 0.
    let winner = id.accept(rotation(&id, &k, 1, 2, "winner"));
    let loser = id.accept(rotation(&id, &k, 1, 2, "loser"));
    store.append_kel_event(winner.clone()).await.unwrap();
    id.push(winner.event().clone());
    let before = store.stats().await.unwrap();
    let root = store.root_at(before.log_size).await.unwrap();

    // The loser was accepted against head 0, which is gone.
    match store.append_kel_event(loser).await {
        Err(StoreError::Conflict { expected, found, .. }) => {
            assert_eq!(expected, Some(head0.clone()));
            assert_eq!(found, Some(id.head()));
        }
        other => panic!("{other:?}"),
    }
    // An event accepted onto the head of a DID the store does not hold.
    let other = incept(&k, "other");
    let orphan = other.accept(rotation(&other, &k, 1, 2, "orphan"));
    match store.append_kel_event(orphan).await {
        Err(StoreError::Conflict { expected: Some(_), found: None, .. }) => {}
        other => panic!("{other:?}"),
    }

    assert_eq!(store.stats().await.unwrap(), before);
    assert_eq!(store.root_at(before.log_size).await.unwrap(), root);
    store.close().await.unwrap();
}

/// The store takes only events atp-core accepted: what does not fit a log is refused there,
/// with core's precise code, and never reaches the store.
pub async fn events_that_do_not_fit_are_refused_before_the_store(backend: &dyn Backend) {
    let store = backend.open().await;
    let k = keys(4);
    let id = incept(&k, "structural");
    let other = incept(&k, "structural-other");
    let log = kel::KeyEventLog::default();
    let refused = |r: Result<atp_core::accepted::AcceptedEvent, atp_core::CoreError>| {
        r.expect_err("refused by atp-core").code()
    };
    // Inception under another DID.
    assert_eq!(refused(log.accept(&other.did, None, id.events[0].clone())), "KEL_DID_MISMATCH");
    // A rotation as the first event.
    let rot = rotation(&id, &k, 1, 2, "r");
    assert_eq!(refused(log.accept(&id.did, None, rot.clone())), "KEL_BAD_SEQUENCE");
    store.append_kel_event(id.inception()).await.unwrap();
    // An inception after the head.
    let again = log.accept(&id.did, Some(&id.state), id.events[0].clone());
    assert_eq!(refused(again), "KEL_MALFORMED");
    // A rotation of `id` onto `other`'s log.
    assert_eq!(refused(log.accept(&other.did, Some(&other.state), rot)), "KEL_DID_MISMATCH");
    assert_eq!(store.stats().await.unwrap().kel_events, 1);
    store.close().await.unwrap();
}

/// `writers` tasks race to append a different event at each sequence number, half of them
/// through a second store on the same data directory (as a second process would).
pub async fn concurrent_appenders_never_fork_a_kel(backend: &dyn Backend) {
    let a = backend.open().await;
    let b = backend.open().await;
    let stores: [Arc<dyn Store>; 2] = [a.clone(), b.clone()];
    let k = keys(6);
    let mut id = incept(&k, "race");
    let writers = 8;

    // Round 0: everyone tries the same inception; exactly one stores it.
    let mut set = tokio::task::JoinSet::new();
    for w in 0..writers {
        let store = stores[w % 2].clone();
        let ev = id.inception();
        set.spawn(async move { store.append_kel_event(ev).await });
    }
    let results = set.join_all().await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.code(), "STORE_CONFLICT", "{e}");
        }
    }

    for round in 1..=4usize {
        let candidates: Vec<_> = (0..writers)
            .map(|w| rotation(&id, &k, round, round + 1, &format!("r{round}w{w}")))
            .collect();
        let mut set = tokio::task::JoinSet::new();
        for (w, ev) in candidates.iter().enumerate() {
            let store = stores[w % 2].clone();
            let ev = id.accept(ev.clone());
            set.spawn(async move { (w, store.append_kel_event(ev).await) });
        }
        let results = set.join_all().await;
        let winners: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one writer wins");
        let (w, ok) = winners[0];
        let appended = ok.as_ref().unwrap();
        assert_eq!(appended.sequence, round as u64);
        for (_, r) in &results {
            if let Err(e) = r {
                match e {
                    StoreError::Conflict { found: Some(found), .. } => {
                        assert_eq!(found.digest, appended.digest)
                    }
                    other => panic!("round {round}: {other}"),
                }
            }
        }
        id.push(candidates[*w].clone());
    }

    // Both stores see the same, single, valid log.
    for store in &stores {
        let events: Vec<_> =
            store.get_kel(&id.did).await.unwrap().into_iter().map(|s| s.event).collect();
        assert_eq!(events, id.events);
        let state = kel::verify_log(&events).unwrap();
        assert_eq!(state.sequence, 4);
        assert_eq!(store.identity_count().await.unwrap(), 1);
        check_log(&**store).await;
    }
    assert_eq!(a.log_size().await.unwrap(), 5);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// Identities page by keyset.
pub async fn identities_page_by_keyset(backend: &dyn Backend) {
    let store = backend.open().await;
    let k = keys(2);
    let mut dids = BTreeSet::new();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..23 {
        let id = incept(&k, &format!("page{i}"));
        dids.insert(id.did.clone());
        let s = store.clone();
        set.spawn(async move { s.append_kel_event(id.inception()).await });
    }
    for r in set.join_all().await {
        r.unwrap();
    }
    assert_eq!(store.identity_count().await.unwrap(), 23);

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let page = store.list_identities(10, token.as_deref()).await.unwrap();
        pages.push(page.identities.len());
        seen.extend(page.identities.into_iter().map(|r| r.did));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, vec![10, 10, 3]);
    assert_eq!(seen, dids.iter().cloned().collect::<Vec<_>>());
    // Page size 0 is the default; an exact fit has no next page.
    let all = store.list_identities(0, None).await.unwrap();
    assert_eq!((all.identities.len(), all.next_page_token), (23, None));
    let fit = store.list_identities(23, None).await.unwrap();
    assert_eq!(fit.next_page_token, None);
    let past = store.list_identities(5, Some("did:atp:~")).await.unwrap();
    assert!(past.identities.is_empty());
    assert_eq!(
        code(store.list_identities(5, Some(&"x".repeat(4000))).await),
        "STORE_INVALID_ARGUMENT"
    );
    store.close().await.unwrap();
}

/// Status lists set get and allocate.
pub async fn status_lists_set_get_and_allocate(backend: &dyn Backend) {
    let store = backend.open().await;
    let issuer = "did:atp:issuer".to_string();
    let new = |id: &str, size: u8, allocatable: bool| NewStatusList {
        list_id: id.into(),
        issuer: issuer.clone(),
        purpose: StatusPurpose::Revocation,
        status_size: size,
        entries: 131_072,
        allocatable,
    };
    store.create_status_list(new("rev-1", 1, true)).await.unwrap();
    store.create_status_list(new("msg-1", 2, false)).await.unwrap();

    let rec = store.get_status_list("rev-1").await.unwrap().unwrap();
    assert_eq!((rec.version, rec.list.entries(), rec.list.status_size()), (0, 131_072, 1));
    assert_eq!(rec.purpose, StatusPurpose::Revocation);
    assert!(rec.list.as_bytes().iter().all(|b| *b == 0));

    let u = store.set_status("rev-1".into(), 42, 1).await.unwrap();
    assert_eq!((u.version, u.previous), (1, 0));
    let leaf = &store.get_entries(u.log_index.unwrap(), 1).await.unwrap()[0];
    assert_eq!(leaf.kind, LeafKind::Status);
    assert_eq!(leaf.data_hash, atp_core::log_entry::status_data_hash("rev-1", 42, 1, 1).unwrap());
    // Setting the same value again changes and logs nothing.
    let size = store.log_size().await.unwrap();
    let same = store.set_status("rev-1".into(), 42, 1).await.unwrap();
    assert_eq!((same.version, same.previous, same.log_index), (1, 1, None));
    assert_eq!(store.log_size().await.unwrap(), size);
    // Reinstating is a change.
    let back = store.set_status("rev-1".into(), 42, 0).await.unwrap();
    assert_eq!((back.version, back.previous), (2, 1));
    store.set_status("msg-1".into(), 131_071, 3).await.unwrap();

    let rev = store.get_status_list("rev-1").await.unwrap().unwrap();
    assert_eq!((rev.list.get(42).unwrap(), rev.version), (0, 2));
    let msg = store.get_status_list("msg-1").await.unwrap().unwrap();
    assert_eq!(msg.list.get(131_071).unwrap(), 3);
    assert_eq!(store.get_status_list("nope").await.unwrap(), None);

    // The allocator hands out consecutive indices of allocatable lists only.
    let s0 = store.allocate_status_index(issuer.clone(), StatusPurpose::Revocation).await.unwrap();
    let s1 = store.allocate_status_index(issuer.clone(), StatusPurpose::Revocation).await.unwrap();
    assert_eq!(s0.map(|s| (s.list_id, s.index)), Some(("rev-1".into(), 0)));
    assert_eq!(s1.map(|s| s.index), Some(1));
    assert_eq!(
        store.allocate_status_index(issuer.clone(), StatusPurpose::Suspension).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .allocate_status_index("did:atp:other".into(), StatusPurpose::Revocation)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_status_list("rev-1").await.unwrap().unwrap().next_index, 2);

    // Refusals store nothing.
    let before = store.stats().await.unwrap();
    let rev_before = store.get_status_list("rev-1").await.unwrap();
    assert_eq!(code(store.create_status_list(new("rev-1", 1, true)).await), "STORE_ALREADY_EXISTS");
    assert_eq!(
        code(store.create_status_list(new("bad id", 1, true)).await),
        "STORE_INVALID_ARGUMENT"
    );
    assert_eq!(
        code(store.create_status_list(new("x", 9, true)).await),
        "STATUS_LIST_STATUS_SIZE_INVALID"
    );
    let short = NewStatusList { entries: 1000, ..new("short", 1, true) };
    assert_eq!(code(store.create_status_list(short).await), "STATUS_LIST_LENGTH_ERROR");
    assert_eq!(code(store.set_status("rev-1".into(), 131_072, 1).await), "STATUS_LIST_RANGE_ERROR");
    assert_eq!(
        code(store.set_status("rev-1".into(), 1, 2).await),
        "STATUS_LIST_VALUE_OUT_OF_RANGE"
    );
    assert_eq!(code(store.set_status("nope".into(), 1, 1).await), "STORE_NOT_FOUND");
    assert_eq!(store.stats().await.unwrap(), before);
    assert_eq!(store.get_status_list("rev-1").await.unwrap(), rev_before);
    check_log(&*store).await;
    store.close().await.unwrap();
}

/// An external issuer's signed update applies all its changes or none, moves the list version
/// to its `update_seq`, refuses stale sequence numbers and un-revocation, and logs one leaf.
pub async fn signed_status_updates_apply_all_or_nothing(backend: &dyn Backend) {
    let store = backend.open().await;
    let issuer = "did:atp:external".to_string();
    for (id, purpose) in
        [("ext-rev", StatusPurpose::Revocation), ("ext-sus", StatusPurpose::Suspension)]
    {
        store
            .create_status_list(NewStatusList {
                list_id: id.into(),
                issuer: issuer.clone(),
                purpose,
                status_size: 1,
                entries: 131_072,
                allocatable: false,
            })
            .await
            .unwrap();
    }
    let update = |list: &str, purpose, seq: u64, changes: Vec<(u64, u8)>| NewSignedStatusUpdate {
        list_id: list.into(),
        issuer: issuer.clone(),
        purpose,
        update_seq: seq,
        changes,
        update: format!("update {list} {seq}").into_bytes(),
        signature: vec![7; 32],
    };
    let rev = StatusPurpose::Revocation;
    let applied = store.apply_status_update(update("ext-rev", rev, 5, vec![(1, 1), (9, 1)])).await;
    let applied = applied.unwrap();
    assert_eq!((applied.version, applied.changed), (5, 2));
    let leaf = &store.get_entries(applied.log_index, 1).await.unwrap()[0];
    assert_eq!(leaf.kind, LeafKind::StatusUpdate);
    assert_eq!(
        leaf.data_hash,
        atp_core::log_entry::status_update_data_hash(b"update ext-rev 5", &[7; 32]).unwrap()
    );
    let list = store.get_status_list("ext-rev").await.unwrap().unwrap();
    assert_eq!((list.version, list.list.get(1).unwrap(), list.list.get(9).unwrap()), (5, 1, 1));

    // Every refusal leaves the list, its version and the log as they were.
    let before = store.stats().await.unwrap();
    let list_before = store.get_status_list("ext-rev").await.unwrap();
    let stale = store.apply_status_update(update("ext-rev", rev, 5, vec![(2, 1)])).await;
    assert_eq!(code(stale), "STATUS_UPDATE_STALE");
    // The second change would un-revoke entry 9: the first change must not land either.
    let unrevoke = update("ext-rev", rev, 6, vec![(3, 1), (9, 0)]);
    assert_eq!(code(store.apply_status_update(unrevoke).await), "STATUS_REVOCATION_FINAL");
    let range = update("ext-rev", rev, 6, vec![(3, 1), (131_072, 1)]);
    assert_eq!(code(store.apply_status_update(range).await), "STATUS_LIST_RANGE_ERROR");
    let value = update("ext-rev", rev, 6, vec![(3, 2)]);
    assert_eq!(code(store.apply_status_update(value).await), "STATUS_LIST_VALUE_OUT_OF_RANGE");
    let purpose = update("ext-rev", StatusPurpose::Suspension, 6, vec![(3, 1)]);
    assert_eq!(code(store.apply_status_update(purpose).await), "STATUS_LIST_PURPOSE_MISMATCH");
    let other_issuer = NewSignedStatusUpdate {
        issuer: "did:atp:else".into(),
        ..update("ext-rev", rev, 6, vec![(3, 1)])
    };
    assert_eq!(code(store.apply_status_update(other_issuer).await), "STORE_INVALID_ARGUMENT");
    let missing = update("nope", rev, 6, vec![(3, 1)]);
    assert_eq!(code(store.apply_status_update(missing).await), "STORE_NOT_FOUND");
    let empty = update("ext-rev", rev, 6, vec![]);
    assert_eq!(code(store.apply_status_update(empty).await), "STORE_INVALID_ARGUMENT");
    assert_eq!(store.stats().await.unwrap(), before);
    assert_eq!(store.get_status_list("ext-rev").await.unwrap(), list_before);

    // Suspension lists can be reinstated, with a fresh sequence number.
    let sus = StatusPurpose::Suspension;
    store.apply_status_update(update("ext-sus", sus, 1, vec![(4, 1)])).await.unwrap();
    let back = store.apply_status_update(update("ext-sus", sus, 2, vec![(4, 0)])).await.unwrap();
    assert_eq!((back.version, back.changed), (2, 1));
    assert_eq!(store.get_status_list("ext-sus").await.unwrap().unwrap().list.get(4).unwrap(), 0);
    check_log(&*store).await;
    store.close().await.unwrap();
}

/// The anchor set and its metadata commit together, or not at all.
pub async fn trust_anchors_and_their_metadata_commit_together(backend: &dyn Backend) {
    let store = backend.open().await;
    let anchors = vec!["did:atp:b".to_string(), "did:atp:a".to_string()];
    let leaf = store
        .set_trust_anchors_with_meta(anchors.clone(), "anchors".into(), "revision 1".into())
        .await
        .unwrap();
    assert_eq!(store.list_trust_anchors().await.unwrap(), vec!["did:atp:a", "did:atp:b"]);
    assert_eq!(store.get_meta("anchors").await.unwrap().as_deref(), Some("revision 1"));
    let entry = store.get_entries(leaf, 1).await.unwrap().remove(0);
    assert_eq!(entry.kind, LeafKind::Anchors);
    // The leaf is found by its hash through the index; an unknown hash is not.
    assert_eq!(store.find_leaf(&entry.leaf_hash).await.unwrap(), Some(leaf));
    assert_eq!(store.find_leaf(&[9; 32]).await.unwrap(), None);
    // A metadata value over its limit refuses the whole write.
    let before = store.stats().await.unwrap();
    let huge = "x".repeat(atp_store::model::MAX_META_VALUE_BYTES + 1);
    let r = store.set_trust_anchors_with_meta(vec!["did:atp:c".into()], "anchors".into(), huge);
    assert_eq!(code(r.await), "STORE_INVALID_ARGUMENT");
    assert_eq!(store.stats().await.unwrap(), before);
    assert_eq!(store.list_trust_anchors().await.unwrap(), vec!["did:atp:a", "did:atp:b"]);
    assert_eq!(store.get_meta("anchors").await.unwrap().as_deref(), Some("revision 1"));
    store.close().await.unwrap();
}

/// Trust anchors meta and evidence.
pub async fn trust_anchors_meta_and_evidence(backend: &dyn Backend) {
    let store = backend.open().await;
    assert!(store.list_trust_anchors().await.unwrap().is_empty());
    let i0 = store
        .set_trust_anchors(vec!["did:atp:b".into(), "did:atp:a".into(), "did:atp:b".into()])
        .await
        .unwrap();
    assert_eq!(store.list_trust_anchors().await.unwrap(), vec!["did:atp:a", "did:atp:b"]);
    let leaf = &store.get_entries(i0, 1).await.unwrap()[0];
    assert_eq!(leaf.kind, LeafKind::Anchors);
    let sorted = vec!["did:atp:a".to_string(), "did:atp:b".to_string()];
    assert_eq!(leaf.data_hash, atp_core::log_entry::anchors_data_hash(&sorted).unwrap());
    // Replacing is a new leaf; the empty set is allowed.
    let i1 = store.set_trust_anchors(vec!["did:key:z6Mk".into()]).await.unwrap();
    assert_eq!(i1, i0 + 1);
    assert_eq!(store.list_trust_anchors().await.unwrap(), vec!["did:key:z6Mk"]);

    assert_eq!(store.get_meta("node.did").await.unwrap(), None);
    store.set_meta("node.did".into(), "did:atp:node".into()).await.unwrap();
    store.set_meta("node.did".into(), "did:atp:node2".into()).await.unwrap();
    assert_eq!(store.get_meta("node.did").await.unwrap().as_deref(), Some("did:atp:node2"));

    let ev = evidence(1);
    let i2 = store.append_evidence(ev.clone()).await.unwrap();
    let leaf = &store.get_entries(i2, 1).await.unwrap()[0];
    assert_eq!((leaf.kind, leaf.data_hash), (LeafKind::Evidence, evidence_data_hash(&ev.body)));
    // The leaf holds a hash, never the evidence itself.
    assert_eq!(leaf.entry_bytes().len(), "atp/tlog/1/evidence\n".len() + 32);

    let before = store.stats().await.unwrap();
    let r = store.set_trust_anchors(vec!["did:atp:ok".into(), "has space".into()]).await;
    assert_eq!(code(r), "STORE_INVALID_ARGUMENT");
    let many = (0..2000).map(|i| format!("did:atp:{i}")).collect();
    assert_eq!(code(store.set_trust_anchors(many).await), "STORE_INVALID_ARGUMENT");
    assert_eq!(code(store.set_meta(String::new(), "v".into()).await), "STORE_INVALID_ARGUMENT");
    assert_eq!(
        code(store.set_meta("k".into(), "v".repeat(70_000)).await),
        "STORE_INVALID_ARGUMENT"
    );
    let empty = NewEvidence { body: vec![], ..evidence(2) };
    assert_eq!(code(store.append_evidence(empty).await), "STORE_INVALID_ARGUMENT");
    assert_eq!(store.stats().await.unwrap(), before);
    assert_eq!(store.list_trust_anchors().await.unwrap(), vec!["did:key:z6Mk"]);
    store.close().await.unwrap();
}

/// Checkpoints must match the log.
pub async fn checkpoints_must_match_the_log(backend: &dyn Backend) {
    let store = backend.open().await;
    let ed = SigningKey::generate(AlgorithmId::Ed25519).unwrap();
    let ml = SigningKey::generate(AlgorithmId::MlDsa65).unwrap();
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    for i in 0..5 {
        store.append_evidence(evidence(i)).await.unwrap();
    }
    let note = |size: u64, root: [u8; 32]| {
        sign_note(&Checkpoint::new("atp.test/log", size, root), "atp.test/log", &ed, &ml).unwrap()
    };
    let r3 = store.root_at(3).await.unwrap();
    let r5 = store.root_at(5).await.unwrap();
    assert!(store.put_checkpoint(note(3, r3)).await.unwrap());
    assert!(store.put_checkpoint(note(5, r5)).await.unwrap());
    // A second note for a stored size is ignored; the first stays.
    let again = note(5, r5);
    assert!(!store.put_checkpoint(again.clone()).await.unwrap());
    let latest = store.latest_checkpoint().await.unwrap().unwrap();
    assert_eq!((latest.size, latest.root_hash), (5, r5));
    assert_ne!(latest.note, again);
    assert_eq!(store.checkpoint_at(3).await.unwrap().unwrap().root_hash, r3);
    assert_eq!(store.checkpoint_at(4).await.unwrap(), None);
    // The empty tree can be checkpointed too.
    assert!(store.put_checkpoint(note(0, EMPTY_ROOT)).await.unwrap());

    let before = store.stats().await.unwrap();
    assert_eq!(code(store.put_checkpoint(note(4, r5)).await), "STORE_INVALID_ARGUMENT");
    assert_eq!(code(store.put_checkpoint(note(6, r5)).await), "STORE_OUT_OF_RANGE");
    assert_eq!(code(store.put_checkpoint("not a note".into()).await), "CHECKPOINT_MALFORMED");
    assert_eq!(store.stats().await.unwrap(), before);
    assert_eq!(store.latest_checkpoint().await.unwrap().unwrap().size, 5);
    store.close().await.unwrap();
}

/// Log requests beyond the log are refused.
pub async fn log_requests_beyond_the_log_are_refused(backend: &dyn Backend) {
    let store = backend.open().await;
    assert_eq!(store.log_size().await.unwrap(), 0);
    assert_eq!(store.root_at(0).await.unwrap(), EMPTY_ROOT);
    assert_eq!(code(store.root_at(1).await), "STORE_OUT_OF_RANGE");
    store.append_evidence(evidence(0)).await.unwrap();
    store.append_evidence(evidence(1)).await.unwrap();
    assert_eq!(code(store.inclusion_proof(0, 3).await), "STORE_OUT_OF_RANGE");
    assert_eq!(code(store.inclusion_proof(2, 2).await), "TLOG_INDEX_OUT_OF_RANGE");
    assert_eq!(code(store.consistency_proof(2, 1).await), "TLOG_CONSISTENCY_SIZE_ORDER");
    assert_eq!(code(store.consistency_proof(1, 3).await), "STORE_OUT_OF_RANGE");
    assert!(store.get_entries(2, 10).await.unwrap().is_empty());
    assert!(store.get_entries(u64::MAX, 10).await.unwrap().is_empty());
    assert!(store.inclusion_proof(0, 1).await.unwrap().is_empty());
    assert_eq!(store.inclusion_proof(1, 2).await.unwrap().len(), 1);
    store.close().await.unwrap();
}

/// A log of a few thousand leaves, appended in group-commit batches: every root, and proofs at
/// sampled points, agree with `atp_core::tlog` and verify.
pub async fn large_log_roots_and_proofs_match_atp_core(backend: &dyn Backend) {
    let store = backend.open().await;
    let n = 2100;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let s = store.clone();
        set.spawn(async move { s.append_evidence(evidence(i)).await });
    }
    let indices: BTreeSet<u64> = set.join_all().await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(indices, (0..n as u64).collect());
    let leaves = check_log(&*store).await;
    let mut acc = MerkleAccumulator::new();
    let mut roots = vec![acc.root()];
    for l in &leaves {
        acc.push_leaf_hash(*l);
        roots.push(acc.root());
    }
    for size in [0u64, 1, 2, 3, 511, 512, 513, 1024, 1500, 2047, 2048, 2049, 2100] {
        assert_eq!(store.root_at(size).await.unwrap(), roots[size as usize], "size {size}");
    }
    for (i, size) in [(0u64, 2100u64), (2099, 2100), (1024, 2100), (700, 1500), (2047, 2049)] {
        let proof = store.inclusion_proof(i, size).await.unwrap();
        assert_eq!(proof, tlog::inclusion_proof(i, &leaves[..size as usize]).unwrap());
        tlog::verify_inclusion(i, size, &leaves[i as usize], &proof, &roots[size as usize])
            .unwrap();
    }
    for (old, new) in [(1u64, 2100u64), (1024, 2100), (1500, 2049), (2048, 2049), (7, 7)] {
        let proof = store.consistency_proof(old, new).await.unwrap();
        assert_eq!(proof, tlog::consistency_proof(old, &leaves[..new as usize]).unwrap());
        let (ro, rn) = (&roots[old as usize], &roots[new as usize]);
        tlog::verify_consistency(old, new, ro, rn, &proof).unwrap();
    }
    let e = store.get_entries(0, 5000).await.unwrap();
    assert_eq!(e.len(), 1000, "get_entries is clamped");
    // Every complete perfect subtree is stored once: n + n/2 + n/4 + ... rows.
    let expected_nodes: u64 = (0..12).map(|l| (n as u64) >> l).sum();
    assert_eq!(store.stats().await.unwrap().tree_nodes, expected_nodes);
    store.close().await.unwrap();
}

/// For every size of a log of random length, the root, and for random sizes random inclusion
/// and consistency proofs, equal what `atp_core::tlog` computes over the same leaves and verify
/// with its verifiers. The leaves are appended concurrently, so they land in commit order.
pub async fn log_proofs_match_atp_core(backend: &dyn Backend) {
    let mut rng = crate::support::SplitMix(0x5eed_a7b0_0001);
    let n = 1 + (rng.next_u64() % 150) as usize;
    let store = backend.open().await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let s = store.clone();
        set.spawn(async move { s.append_evidence(evidence(i)).await });
    }
    for r in set.join_all().await {
        r.unwrap();
    }
    let entries = store.get_entries(0, 1000).await.unwrap();
    let leaves: Vec<_> = entries.iter().map(|e| e.leaf_hash).collect();
    // The leaves are exactly the submitted evidence, in commit order.
    let mut got: Vec<_> = entries.iter().map(|e| e.data_hash).collect();
    let mut want: Vec<_> = (0..n).map(|i| evidence_data_hash(&evidence(i).body)).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    for e in &entries {
        assert_eq!(e.leaf_hash, entry_leaf_hash(LeafKind::Evidence, &e.data_hash));
    }
    for size in 0..=n {
        assert_eq!(
            store.root_at(size as u64).await.unwrap(),
            tlog::root_from_leaf_hashes(&leaves[..size])
        );
    }
    for _ in 0..64 {
        let size = 1 + rng.next_u64() % n as u64;
        let index = rng.next_u64() % size;
        let root = tlog::root_from_leaf_hashes(&leaves[..size as usize]);
        let proof = store.inclusion_proof(index, size).await.unwrap();
        assert_eq!(proof, tlog::inclusion_proof(index, &leaves[..size as usize]).unwrap());
        tlog::verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
        let old = rng.next_u64() % (size + 1);
        let old_root = tlog::root_from_leaf_hashes(&leaves[..old as usize]);
        let proof = store.consistency_proof(old, size).await.unwrap();
        assert_eq!(proof, tlog::consistency_proof(old, &leaves[..size as usize]).unwrap());
        tlog::verify_consistency(old, size, &old_root, &root, &proof).unwrap();
    }
    store.close().await.unwrap();
}

/// Closed store refuses writes.
pub async fn closed_store_refuses_writes(backend: &dyn Backend) {
    let store = backend.open().await;
    store.set_meta("k".into(), "v".into()).await.unwrap();
    store.close().await.unwrap();
    store.close().await.unwrap();
    assert_eq!(code(store.set_meta("k".into(), "w".into()).await), "STORE_CLOSED");
    // The data is on disk for the next open.
    let again = backend.open().await;
    assert_eq!(again.get_meta("k").await.unwrap().as_deref(), Some("v"));
    again.close().await.unwrap();
}

/// Requests that fail among concurrent ones (in one group-commit batch, where the backend
/// batches) store nothing, and the others commit.
pub async fn a_failed_request_does_not_fail_the_others(backend: &dyn Backend) {
    let store = backend.open().await;
    let k = keys(3);
    let ids: Vec<Ident> = (0..6).map(|i| incept(&k, &format!("batch{i}"))).collect();
    // Make ids[0] exist so that its second inception conflicts inside the batch.
    store.append_kel_event(ids[0].inception()).await.unwrap();
    let before = store.stats().await.unwrap();

    let mut set = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let s = store.clone();
        let ev = id.inception();
        set.spawn(async move { (format!("kel{i}"), s.append_kel_event(ev).await.map(|_| ())) });
    }
    for i in 0..4 {
        let s = store.clone();
        set.spawn(
            async move { (format!("ev{i}"), s.append_evidence(evidence(i)).await.map(|_| ())) },
        );
    }
    let s = store.clone();
    set.spawn(async move {
        ("missing-list".into(), s.set_status("nope".into(), 1, 1).await.map(|_| ()))
    });
    let results = set.join_all().await;
    for (name, r) in &results {
        match name.as_str() {
            "kel0" => assert_eq!(r.as_ref().map_err(StoreError::code), Err("STORE_CONFLICT")),
            "missing-list" => {
                assert_eq!(r.as_ref().map_err(StoreError::code), Err("STORE_NOT_FOUND"))
            }
            _ => assert!(r.is_ok(), "{name}: {r:?}"),
        }
    }
    let after = store.stats().await.unwrap();
    assert_eq!(after.identities, before.identities + 5);
    assert_eq!(after.evidence, 4);
    assert_eq!(after.log_size, before.log_size + 9);
    check_log(&*store).await;
    store.close().await.unwrap();
}

/// Events of one DID submitted back to back, each naming the head the one before creates, all
/// commit in order (in one batch, where the backend batches: the batch's view of the head
/// advances from one to the next).
pub async fn pipelined_events_of_one_did_all_commit(backend: &dyn Backend) {
    let store = backend.open().await;
    let k = keys(4);
    let mut id = incept(&k, "pipelined");
    let icp = id.inception();
    let r1 = rotation(&id, &k, 1, 2, "p1");
    let a1 = id.accept(r1.clone());
    id.push(r1);
    let r2 = rotation(&id, &k, 2, 3, "p2");
    let a2 = id.accept(r2.clone());
    id.push(r2);
    // join! polls in order, so the requests enter the queue in order.
    let (a, b, c) = tokio::join!(
        store.append_kel_event(icp),
        store.append_kel_event(a1),
        store.append_kel_event(a2),
    );
    assert_eq!((a.unwrap().log_index, b.unwrap().log_index, c.unwrap().log_index), (0, 1, 2));
    let rec = store.get_identity(&id.did).await.unwrap().unwrap();
    assert_eq!(rec.head(), id.head());
    assert_eq!((rec.created.as_str(), rec.updated.as_str()), (common::T0, &*id.state.updated));
    assert_eq!(store.identity_count().await.unwrap(), 1);
    let events: Vec<_> =
        store.get_kel(&id.did).await.unwrap().into_iter().map(|s| s.event).collect();
    assert_eq!(kel::verify_log(&events).unwrap(), id.state);
    check_log(&*store).await;
    store.close().await.unwrap();
}
