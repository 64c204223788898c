use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::super::SqliteStore;
use crate::{NewEvidence, Store};

/// Makes the next bulk flush fail, to exercise the isolated retry.
pub(crate) static FAIL_NEXT_BULK_FLUSH: AtomicBool = AtomicBool::new(false);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bulk_batch_is_retried_isolated() {
    let dir = std::env::temp_dir().join(format!(
        "atp-store-unit-bulk-{}-{}",
        std::process::id(),
        super::now_ms()
    ));
    let store = Arc::new(SqliteStore::open(&dir).await.unwrap());
    FAIL_NEXT_BULK_FLUSH.store(true, Ordering::SeqCst);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let s = store.clone();
        set.spawn(async move {
            let ev = NewEvidence {
                subject: "did:atp:x".into(),
                evidence_type: "t".into(),
                body: vec![i; 10],
            };
            s.append_evidence(ev).await
        });
    }
    let mut indices: Vec<u64> = set.join_all().await.into_iter().map(|r| r.unwrap()).collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..20).collect::<Vec<_>>());
    assert!(!FAIL_NEXT_BULK_FLUSH.load(Ordering::SeqCst), "the injected failure was hit");
    assert_eq!(store.stats().await.unwrap().evidence, 20);
    store.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
