//! Signed trust evidence: recorded with its `evidence` leaf in one transaction, idempotent by
//! content hash, listed newest first with filters and keyset pages, scanned in log order;
//! refused input stores nothing.

use atp_core::log_entry::entry_leaf_hash;
use atp_store::{LeafKind, NewTrustEvidence, StoreError, TrustEvidenceFilter};

use crate::Backend;

const KINDS: [&str; 3] = ["Endorsement", "InteractionReceipt", "IncidentReport"];

fn evidence(i: usize) -> NewTrustEvidence {
    NewTrustEvidence {
        content_hash: atp_crypto::sha256(format!("body {i}").as_bytes()),
        kind: KINDS[i % 3].into(),
        issuer: format!("did:atp:issuer{}", i % 2),
        subject: format!("did:atp:subject{}", i % 5),
        created_ms: 1_700_000_000_000 + i as i64,
        evidence_json: format!("{{\"n\":{i}}}"),
    }
}

/// Record is logged and idempotent.
pub async fn record_is_logged_and_idempotent(backend: &dyn Backend) {
    let store = backend.open().await;
    let e = evidence(1);
    let first = store.record_trust_evidence(e.clone()).await.unwrap();
    assert!(!first.duplicate);
    // The leaf commits to the content hash as an `evidence` entry.
    let entries = store.get_entries(first.log_index, 1).await.unwrap();
    assert_eq!(entries[0].kind, LeafKind::Evidence);
    assert_eq!(entries[0].data_hash, e.content_hash);
    assert_eq!(entries[0].leaf_hash, entry_leaf_hash(LeafKind::Evidence, &e.content_hash));
    let before = store.stats().await.unwrap();
    assert_eq!(before.trust_evidence, 1);

    // The same content hash again (other signatures: other JSON) stores nothing.
    let again = NewTrustEvidence { evidence_json: "{\"other\":1}".into(), ..e.clone() };
    let dup = store.record_trust_evidence(again).await.unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.log_index, first.log_index);
    assert_eq!(store.stats().await.unwrap(), before);
    let page = store.list_trust_evidence(&TrustEvidenceFilter::default(), 0, None).await.unwrap();
    assert_eq!(page.evidence.len(), 1);
    assert_eq!(page.evidence[0].evidence_json, e.evidence_json);
    assert_eq!(page.evidence[0].created_ms, e.created_ms);

    // Concurrent duplicates: exactly one leaf.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.record_trust_evidence(evidence(2)).await }));
    }
    let mut fresh = 0;
    let mut indices = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        fresh += usize::from(!r.duplicate);
        indices.insert(r.log_index);
    }
    assert_eq!((fresh, indices.len()), (1, 1));
    assert_eq!(store.stats().await.unwrap().log_size, before.log_size + 1);
    store.close().await.unwrap();
}

/// Refused input stores nothing.
pub async fn refused_input_stores_nothing(backend: &dyn Backend) {
    let store = backend.open().await;
    let before = store.stats().await.unwrap();
    let bad = [
        NewTrustEvidence { issuer: String::new(), ..evidence(1) },
        NewTrustEvidence { subject: "did:atp:a b".into(), ..evidence(1) },
        NewTrustEvidence { kind: String::new(), ..evidence(1) },
        NewTrustEvidence { evidence_json: String::new(), ..evidence(1) },
        NewTrustEvidence { evidence_json: "x".repeat(64 * 1024 + 1), ..evidence(1) },
    ];
    for e in bad {
        let r = store.record_trust_evidence(e).await;
        assert!(matches!(r, Err(StoreError::InvalidArgument(_))), "{r:?}");
    }
    assert_eq!(store.stats().await.unwrap(), before);
    store.close().await.unwrap();
}

/// List filters pages and scan.
pub async fn list_filters_pages_and_scan(backend: &dyn Backend) {
    let store = backend.open().await;
    let mut recorded = Vec::new();
    for i in 0..30 {
        let r = store.record_trust_evidence(evidence(i)).await.unwrap();
        recorded.push((r.log_index, evidence(i)));
    }
    // All, in pages of 7, newest first, no gaps or repeats.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store
            .list_trust_evidence(&TrustEvidenceFilter::default(), 7, token.as_deref())
            .await
            .unwrap();
        assert!(page.evidence.len() <= 7);
        seen.extend(page.evidence.iter().map(|r| r.log_index));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let mut expected: Vec<u64> = recorded.iter().map(|(i, _)| *i).collect();
    expected.reverse();
    assert_eq!(seen, expected);

    // Filters combine.
    let filter = TrustEvidenceFilter {
        subject: Some("did:atp:subject3".into()),
        issuer: Some("did:atp:issuer1".into()),
        kind: None,
    };
    let page = store.list_trust_evidence(&filter, 100, None).await.unwrap();
    let want: Vec<u64> = recorded
        .iter()
        .rev()
        .filter(|(_, e)| e.subject == "did:atp:subject3" && e.issuer == "did:atp:issuer1")
        .map(|(i, _)| *i)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(page.evidence.iter().map(|r| r.log_index).collect::<Vec<_>>(), want);
    let by_kind = TrustEvidenceFilter { kind: Some("IncidentReport".into()), ..Default::default() };
    let page = store.list_trust_evidence(&by_kind, 100, None).await.unwrap();
    assert_eq!(page.evidence.len(), 10);
    assert!(page.evidence.iter().all(|r| r.kind == "IncidentReport"));
    let none = TrustEvidenceFilter { issuer: Some("did:atp:nobody".into()), ..Default::default() };
    assert!(store.list_trust_evidence(&none, 0, None).await.unwrap().evidence.is_empty());

    // Malformed page tokens are refused.
    for t in ["abc", "-1", "99999999999999999999999"] {
        let r = store.list_trust_evidence(&TrustEvidenceFilter::default(), 5, Some(t)).await;
        assert!(matches!(r, Err(StoreError::InvalidArgument(_))), "{t}: {r:?}");
    }

    // Scan in log order, in chunks.
    let mut scanned = Vec::new();
    let mut after = None;
    loop {
        let chunk = store.scan_trust_evidence(after, 4).await.unwrap();
        let Some(last) = chunk.last() else { break };
        after = Some(last.log_index);
        scanned.extend(chunk.into_iter().map(|r| (r.log_index, r.content_hash)));
    }
    let want: Vec<_> = recorded.iter().map(|(i, e)| (*i, e.content_hash)).collect();
    assert_eq!(scanned, want);
    store.close().await.unwrap();
}
