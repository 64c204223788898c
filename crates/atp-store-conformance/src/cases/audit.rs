//! The audit trail: events stored with their change or not at all, a change whose events cannot
//! be stored not made (fail-closed), batches sealed in order into the log and verifiable with
//! atp-core's rules, and pages filtered by code, time and batch.

use atp_core::audit::{
    Actor, AuditEvent, Client, EventCode, GENESIS, Outcome, SealedRow, Target, batch_data_hash,
    uuid_v7, verify_batch,
};
use atp_core::log_entry::entry_leaf_hash;
use atp_store::{
    AuditEntry, AuditQuery, AuditedOutcome, AuditedWrite, LeafKind, Store, StoredAuditEvent,
};

use crate::Backend;
use crate::cases::log_and_kel::code;
use crate::support::{incept, keys};

/// The `n`-th test event with `code`, at a time that grows with `n`.
pub fn entry(n: u64, code: EventCode) -> AuditEntry {
    let event = AuditEvent {
        id: uuid_v7(1_780_000_000_000 + n, [(n % 251) as u8; 10]),
        time: 1_780_000_000_000 + n as i64,
        code: code.as_str().into(),
        event_type: code.event_type().into(),
        actor: Actor { id: "admin".into(), kind: "admin".into(), tenant: None },
        client: Client::default(),
        target: vec![Target { kind: "test".into(), id: format!("item-{n}") }],
        outcome: Outcome { result: "SUCCESS".into(), reason: None },
        request_id: None,
        rule: None,
    };
    AuditEntry::new(&event).unwrap()
}

fn query(limit: u32) -> AuditQuery {
    AuditQuery { limit, ..AuditQuery::default() }
}

async fn all_events(store: &dyn Store) -> Vec<StoredAuditEvent> {
    store.list_audit_events(query(1000)).await.unwrap()
}

/// An audited write stores its change and its events; a refused write stores neither; events
/// alone are stored too.
pub async fn audited_writes_store_the_change_and_its_events_together(backend: &dyn Backend) {
    let store = backend.open().await;
    let anchors = AuditedWrite::SetTrustAnchors { anchors: vec!["did:atp:a".into()], meta: None };
    let out =
        store.write_audited(anchors, vec![entry(1, EventCode::AnchorsChanged)]).await.unwrap();
    assert!(matches!(out, AuditedOutcome::AnchorsSet(_)), "{out:?}");
    assert_eq!(store.list_trust_anchors().await.unwrap(), vec!["did:atp:a"]);

    let ks = keys(2);
    let id = incept(&ks, "audited");
    let appended = store
        .write_audited(
            AuditedWrite::AppendKel(Box::new(id.inception())),
            vec![entry(2, EventCode::KeyEventAccepted)],
        )
        .await
        .unwrap()
        .appended()
        .unwrap();
    assert_eq!(appended.did, id.did);
    store
        .write_audited(
            AuditedWrite::Nothing,
            vec![entry(3, EventCode::AuthzDenied), entry(4, EventCode::AuthnFailed)],
        )
        .await
        .unwrap();

    // A write refused on its own stores none of its events.
    let before = store.stats().await.unwrap();
    let refused = store.write_audited(
        AuditedWrite::SetStatus { list_id: "no-such-list".into(), index: 0, value: 1 },
        vec![entry(5, EventCode::CredentialStatusChanged)],
    );
    assert!(refused.await.is_err());
    // So does an append against a head that moved (the same inception again).
    let again = store.write_audited(
        AuditedWrite::AppendKel(Box::new(id.inception())),
        vec![entry(6, EventCode::KeyEventAccepted)],
    );
    assert_eq!(code(again.await), "STORE_CONFLICT");
    // Too many events for one write: refused before anything is written.
    let many = (0..65).map(|n| entry(100 + n, EventCode::AdminAction)).collect();
    assert_eq!(
        code(store.write_audited(AuditedWrite::Nothing, many).await),
        "STORE_INVALID_ARGUMENT"
    );
    assert_eq!(store.stats().await.unwrap(), before);

    let events = all_events(&*store).await;
    let codes: Vec<&str> = events.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["anchors.changed", "key_event.accepted", "authz.denied", "authn.failed"]);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq), "increasing sequence numbers");
    for (stored, n) in events.iter().zip([1, 2, 3, 4]) {
        let expected = entry(n, EventCode::parse(&stored.code).unwrap());
        assert_eq!(stored.body, expected.body());
        assert_eq!(&stored.digest, expected.digest());
        assert_eq!(stored.time_ms, expected.time_ms());
        assert_eq!(stored.sealed, None);
    }
    store.close().await.unwrap();

    // Durable.
    let reopened = backend.open().await;
    assert_eq!(all_events(&*reopened).await, events);
    reopened.close().await.unwrap();
}

/// Fail-closed: once the database refuses audit rows, every audited change is refused and
/// nothing of it is stored, while unaudited writes go on.
pub async fn a_change_whose_events_cannot_be_stored_is_not_made(backend: &dyn Backend) {
    let store = backend.open().await;
    store.set_trust_anchors(vec!["did:atp:a".into()]).await.unwrap();
    backend.refuse_audit_inserts().await;
    let before = store.stats().await.unwrap();

    let anchors = AuditedWrite::SetTrustAnchors { anchors: vec!["did:atp:b".into()], meta: None };
    assert!(store.write_audited(anchors, vec![entry(1, EventCode::AnchorsChanged)]).await.is_err());
    let ks = keys(2);
    let id = incept(&ks, "refused");
    let append = store.write_audited(
        AuditedWrite::AppendKel(Box::new(id.inception())),
        vec![entry(2, EventCode::KeyEventAccepted)],
    );
    assert!(append.await.is_err());
    let alone = store.write_audited(AuditedWrite::Nothing, vec![entry(3, EventCode::AuthzDenied)]);
    assert!(alone.await.is_err());

    assert_eq!(store.stats().await.unwrap(), before, "nothing stored, no log leaf");
    assert_eq!(store.list_trust_anchors().await.unwrap(), vec!["did:atp:a"]);
    assert!(store.get_identity(&id.did).await.unwrap().is_none());
    assert!(all_events(&*store).await.is_empty());
    // An audited append and an unaudited one at once (likely one group commit): the first
    // fails on its own, the second is stored.
    let other = incept(&ks, "unaudited");
    let (audited, plain) = tokio::join!(
        store.write_audited(
            AuditedWrite::AppendKel(Box::new(id.inception())),
            vec![entry(4, EventCode::KeyEventAccepted)],
        ),
        store.append_kel_event(other.inception()),
    );
    assert!(audited.is_err());
    plain.unwrap();
    assert!(store.get_identity(&other.did).await.unwrap().is_some());
    // The trigger refuses audit rows only: an unaudited write still works.
    store.set_trust_anchors(vec!["did:atp:c".into()]).await.unwrap();
    store.close().await.unwrap();
}

/// Sealing takes the unsealed events in order, chains each batch on from the last, and commits
/// it to the log; atp-core's verifier accepts what was stored.
pub async fn sealed_batches_chain_into_the_log(backend: &dyn Backend) {
    let store = backend.open().await;
    assert_eq!(store.seal_audit_batch(10).await.unwrap(), None, "nothing to seal");
    for n in 0..5 {
        store
            .write_audited(AuditedWrite::Nothing, vec![entry(n, EventCode::AdminAction)])
            .await
            .unwrap();
    }
    assert_eq!(code(store.seal_audit_batch(0).await), "STORE_INVALID_ARGUMENT");
    let first = store.seal_audit_batch(3).await.unwrap().unwrap();
    assert_eq!((first.batch.number, first.batch.count), (1, 3));
    assert_eq!(first.batch.previous, GENESIS);
    let second = store.seal_audit_batch(10).await.unwrap().unwrap();
    assert_eq!((second.batch.number, second.batch.count), (2, 2));
    assert_eq!(second.batch.previous, first.batch.head);
    assert_eq!(store.seal_audit_batch(10).await.unwrap(), None);

    let batches = store.list_audit_batches(0, 100).await.unwrap();
    assert_eq!(batches, vec![first.clone(), second.clone()]);
    assert_eq!(store.list_audit_batches(1, 100).await.unwrap(), vec![second.clone()]);
    for stored in &batches {
        // The log committed to exactly this batch.
        let leaf = store.get_entries(stored.log_index, 1).await.unwrap().remove(0);
        assert_eq!(leaf.kind, LeafKind::AuditBatch);
        let data_hash = batch_data_hash(&stored.batch);
        assert_eq!(leaf.leaf_hash, entry_leaf_hash(LeafKind::AuditBatch, &data_hash));
        // Its rows verify with atp-core's rules.
        let q = AuditQuery { batch: Some(stored.batch.number), ..query(1000) };
        let events = store.list_audit_events(q).await.unwrap();
        let rows: Vec<SealedRow<'_>> = events
            .iter()
            .map(|e| {
                let (batch, chain) = e.sealed.unwrap();
                assert_eq!(batch, stored.batch.number);
                SealedRow { seq: e.seq, body: &e.body, digest: e.digest, chain }
            })
            .collect();
        verify_batch(&stored.batch, &rows).unwrap();
    }
    store.close().await.unwrap();
}

/// Pages go by sequence number and filter by code, time and batch; bad page sizes are refused.
pub async fn event_pages_filter_by_code_time_and_batch(backend: &dyn Backend) {
    let store = backend.open().await;
    for n in 0..10 {
        let code = if n % 2 == 0 { EventCode::AuthnSucceeded } else { EventCode::AuthnFailed };
        store.write_audited(AuditedWrite::Nothing, vec![entry(n, code)]).await.unwrap();
    }
    let page = store.list_audit_events(query(4)).await.unwrap();
    assert_eq!(page.len(), 4);
    let next = AuditQuery { after_seq: page[3].seq, ..query(100) };
    assert_eq!(store.list_audit_events(next).await.unwrap().len(), 6);
    let failed = AuditQuery { code: Some("authn.failed".into()), ..query(100) };
    assert_eq!(store.list_audit_events(failed).await.unwrap().len(), 5);
    let window = AuditQuery {
        from_ms: Some(1_780_000_000_002),
        to_ms: Some(1_780_000_000_005),
        ..query(100)
    };
    let times: Vec<i64> =
        store.list_audit_events(window).await.unwrap().iter().map(|e| e.time_ms).collect();
    assert_eq!(times, [1_780_000_000_002, 1_780_000_000_003, 1_780_000_000_004]);
    store.seal_audit_batch(3).await.unwrap().unwrap();
    let sealed = AuditQuery { batch: Some(1), ..query(100) };
    assert_eq!(store.list_audit_events(sealed).await.unwrap().len(), 3);
    assert_eq!(code(store.list_audit_events(query(0)).await), "STORE_INVALID_ARGUMENT");
    assert_eq!(code(store.list_audit_events(query(1001)).await), "STORE_INVALID_ARGUMENT");
    assert_eq!(code(store.list_audit_batches(0, 0).await), "STORE_INVALID_ARGUMENT");
    store.close().await.unwrap();
}

/// Retention removes the events of the oldest batches sealed before the horizon, never a later
/// batch before an earlier one; the batch rows stay, so what remains still verifies.
pub async fn expiry_removes_the_oldest_batches_and_keeps_the_rest_verifiable(
    backend: &dyn Backend,
) {
    let store = backend.open().await;
    for n in 0..6 {
        store
            .write_audited(AuditedWrite::Nothing, vec![entry(n, EventCode::AdminAction)])
            .await
            .unwrap();
    }
    let mut sealed = Vec::new();
    while let Some(batch) = store.seal_audit_batch(2).await.unwrap() {
        sealed.push(batch);
    }
    assert_eq!(sealed.len(), 3);
    assert_eq!(code(store.expire_audit_batches(0, 0).await), "STORE_INVALID_ARGUMENT");
    assert_eq!(code(store.expire_audit_batches(0, 11).await), "STORE_INVALID_ARGUMENT");
    // Nothing is older than the first seal: nothing expires.
    assert_eq!(store.expire_audit_batches(sealed[0].sealed_at_ms, 10).await.unwrap(), 0);
    assert_eq!(all_events(store.as_ref()).await.len(), 6);

    // Everything sealed so far is old enough, but one batch per call: the oldest first.
    let horizon = sealed[2].sealed_at_ms + 1;
    assert_eq!(store.expire_audit_batches(horizon, 1).await.unwrap(), 1);
    let events = all_events(store.as_ref()).await;
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e.sealed.unwrap().0 >= 2), "a later batch expired first");
    let batches = store.list_audit_batches(0, 100).await.unwrap();
    assert_eq!(batches.len(), 3, "batch rows stay");
    assert!(batches[0].expired_at_ms.is_some());
    assert!(batches[1..].iter().all(|b| b.expired_at_ms.is_none()));
    assert_eq!(batches[0].batch, sealed[0].batch);

    // What remains verifies from the expired batch's head.
    assert_eq!(batches[1].batch.previous, batches[0].batch.head);
    for stored in &batches[1..] {
        let q = AuditQuery { batch: Some(stored.batch.number), ..query(1000) };
        let events = store.list_audit_events(q).await.unwrap();
        let rows: Vec<SealedRow<'_>> = events
            .iter()
            .map(|e| {
                let (_, chain) = e.sealed.unwrap();
                SealedRow { seq: e.seq, body: &e.body, digest: e.digest, chain }
            })
            .collect();
        verify_batch(&stored.batch, &rows).unwrap();
    }
    // Unsealed events are never expired; sealing goes on after the expired batches.
    store
        .write_audited(AuditedWrite::Nothing, vec![entry(9, EventCode::AdminAction)])
        .await
        .unwrap();
    assert_eq!(store.expire_audit_batches(i64::MAX, 10).await.unwrap(), 2);
    let events = all_events(store.as_ref()).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].sealed, None);
    let next = store.seal_audit_batch(10).await.unwrap().unwrap();
    assert_eq!((next.batch.number, next.batch.previous), (4, sealed[2].batch.head));
    store.close().await.unwrap();
}
