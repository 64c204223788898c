//! Audit retention on a real server (SQLite store, 127.0.0.1:0): the node's sealing round also
//! expires the events of the oldest batches once they were sealed longer ago than the sink's
//! retention, keeps the batch rows, and never expires anything younger.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use atp_core::audit::AuditEvent;
use atp_server::extensions::AuditSink;
use atp_server::{Extensions, ServerError};
use atp_store::{AuditEntry, AuditQuery};

const DAY_MS: i64 = 86_400_000;

/// Stores every event, keeps them one day.
struct OneDay;

impl AuditSink for OneDay {
    fn entry(&self, event: &AuditEvent) -> Result<Option<AuditEntry>, ServerError> {
        Ok(Some(AuditEntry::new(event)?))
    }

    fn retention(&self) -> Option<Duration> {
        Some(Duration::from_millis(DAY_MS as u64))
    }
}

#[tokio::test]
async fn sealing_expires_only_batches_older_than_the_retention() {
    let now = atp_store::backend::now_ms();
    let clock = Arc::new(AtomicI64::new(now));
    let c = clock.clone();
    let mut extensions = Extensions::community(|t: &str| t == "retention-token");
    extensions.audit = Arc::new(OneDay);
    let node = atp_test_node::TestNode::start_with(atp_test_node::NodeOptions {
        extensions: Some(extensions),
        checkpointer: false,
        clock: Some(Arc::new(move || c.load(Ordering::SeqCst))),
        ..atp_test_node::NodeOptions::default()
    })
    .await;
    let store = node.state.store.clone();
    let all = || store.list_audit_events(AuditQuery { limit: 1000, ..AuditQuery::default() });
    // The node's own inception is an event; seal it.
    let first = all().await.unwrap().len();
    assert!(first >= 1);
    assert!(atp_server::audit::seal_round(&node.state).await.unwrap() >= 1);
    let batches = store.list_audit_batches(0, 100).await.unwrap();
    assert!(batches.iter().all(|b| b.expired_at_ms.is_none()), "expired within the day");
    assert_eq!(all().await.unwrap().len(), first);

    // Two days on: the next round expires what was sealed, and seals nothing new.
    clock.store(now + 2 * DAY_MS, Ordering::SeqCst);
    atp_server::audit::seal_round(&node.state).await.unwrap();
    let after = store.list_audit_batches(0, 100).await.unwrap();
    assert_eq!(after.len(), batches.len(), "batch rows stay");
    assert!(after.iter().all(|b| b.expired_at_ms.is_some()));
    assert!(all().await.unwrap().is_empty(), "the expired events are gone");
}
