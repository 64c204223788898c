//! `SqliteStore` against a real SQLite database in a temporary directory: the conformance suite
//! every backend passes (atp-store-conformance), and what only this backend does, group commit.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use atp_core::kel;
use atp_store::{SqliteConfig, SqliteStore, Store, StoreError};
use atp_store_conformance::cases::log_and_kel::{check_log, evidence};
use atp_store_conformance::{Backend, OpenFuture};
use common::{Ident, TestDir, incept, keys, rotation};

/// A fresh data directory; every open is a `SqliteStore` on it.
struct Sqlite(TestDir);

impl Backend for Sqlite {
    fn open(&self) -> OpenFuture<'_> {
        Box::pin(async move {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(self.0.path()).await.unwrap());
            store
        })
    }
}

async fn fresh() -> Option<Sqlite> {
    Some(Sqlite(TestDir::new("conformance")))
}

atp_store_conformance::conformance_tests!(fresh());

/// In one group-commit batch, requests that fail roll back to their savepoints and the others
/// commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_does_not_fail_its_batch() {
    let dir = TestDir::new("batch");
    let config =
        SqliteConfig { batch_linger: Duration::from_millis(50), ..SqliteConfig::default() };
    let store: Arc<SqliteStore> =
        Arc::new(SqliteStore::open_with(dir.path(), config).await.unwrap());
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

/// Events of one DID submitted back to back (each naming the head the one before creates) land
/// in one batch: the batch's view of the head advances from one to the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_events_of_one_did_commit_in_one_batch() {
    let dir = TestDir::new("pipelined");
    let config =
        SqliteConfig { batch_linger: Duration::from_millis(50), ..SqliteConfig::default() };
    let store = SqliteStore::open_with(dir.path(), config).await.unwrap();
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
    check_log(&store).await;
    store.close().await.unwrap();
}
