//! One-time values (envelope nonces, presentation challenges) recorded in the store, so that
//! every node sharing it refuses a replay: recorded once while live, recorded again only after
//! expiry, exactly one winner among racing stores, and expired records purged in bounded
//! batches.

use crate::Backend;

fn digest(i: u8) -> [u8; 32] {
    let mut d = [0u8; 32];
    d[0] = i;
    d[31] = 0xa5;
    d
}

/// A digest is recorded once while its record lives, and again only after it expired.
pub async fn a_one_time_value_is_recorded_once_while_live(backend: &dyn Backend) {
    let store = backend.open().await;
    assert!(store.record_once(digest(1), 1_000, 0).await.unwrap());
    assert!(!store.record_once(digest(1), 5_000, 500).await.unwrap(), "a live record");
    assert!(!store.record_once(digest(1), 5_000, 1_000).await.unwrap(), "live at its last instant");
    assert!(store.record_once(digest(2), 1_000, 500).await.unwrap(), "another digest");
    assert!(store.record_once(digest(1), 3_000, 1_001).await.unwrap(), "expired: recorded again");
    assert!(!store.record_once(digest(1), 9_000, 2_000).await.unwrap(), "the new record lives");
    store.close().await.unwrap();
}

/// A record is seen live through its last instant by any store on the database, and asking
/// records nothing.
pub async fn a_live_record_is_seen_without_recording(backend: &dyn Backend) {
    let stores = [backend.open().await, backend.open().await];
    assert!(!stores[1].once_record_live(digest(3), 0).await.unwrap(), "never recorded");
    assert!(!stores[1].once_record_live(digest(3), 0).await.unwrap(), "asking recorded nothing");
    assert!(stores[0].record_once(digest(3), 1_000, 0).await.unwrap());
    assert!(stores[1].once_record_live(digest(3), 500).await.unwrap(), "seen by the other store");
    assert!(
        stores[1].once_record_live(digest(3), 1_000).await.unwrap(),
        "live at its last instant"
    );
    assert!(!stores[1].once_record_live(digest(3), 1_001).await.unwrap(), "expired");
    assert!(!stores[0].once_record_live(digest(4), 500).await.unwrap(), "another digest");
    for store in stores {
        store.close().await.unwrap();
    }
}

/// Of racing recorders through two stores on one database, exactly one records.
pub async fn racing_recorders_record_once(backend: &dyn Backend) {
    let stores = [backend.open().await, backend.open().await];
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = stores[i % 2].clone();
        set.spawn(async move { store.record_once(digest(7), 10_000, 0).await.unwrap() });
    }
    let recorded = set.join_all().await.into_iter().filter(|r| *r).count();
    assert_eq!(recorded, 1);
    for store in stores {
        store.close().await.unwrap();
    }
}

/// Many records at once, each digest asked for four times (a store that groups records sees
/// duplicates in one batch): each digest is recorded exactly once.
pub async fn concurrent_duplicates_record_each_digest_once(backend: &dyn Backend) {
    let store = backend.open().await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..64u8 {
        let store = store.clone();
        let d = i % 16;
        set.spawn(async move { (d, store.record_once(digest(100 + d), 10_000, 0).await.unwrap()) });
    }
    let mut recorded = [0u32; 16];
    for (d, first) in set.join_all().await {
        recorded[usize::from(d)] += u32::from(first);
    }
    assert_eq!(recorded, [1; 16], "each digest recorded once");
    store.close().await.unwrap();
}

/// Expired records are purged in bounded batches; live ones stay and still refuse.
pub async fn expired_records_are_purged_in_batches(backend: &dyn Backend) {
    let store = backend.open().await;
    for i in 0..10u8 {
        assert!(store.record_once(digest(i), 100 + i64::from(i), 0).await.unwrap());
    }
    // Records 0..=4 expired before 105.
    assert_eq!(store.purge_once_records(105, 3).await.unwrap(), 3);
    assert_eq!(store.purge_once_records(105, 100).await.unwrap(), 2);
    assert_eq!(store.purge_once_records(105, 100).await.unwrap(), 0);
    for i in 5..10u8 {
        assert!(!store.record_once(digest(i), 1_000, 105).await.unwrap(), "record {i} lives");
    }
    assert!(store.record_once(digest(0), 1_000, 105).await.unwrap(), "record 0 was purged");
    store.close().await.unwrap();
}
