//! Erasure by crypto-shredding (docs/audit.md, "Erasure"): trust evidence is stored sealed
//! under its subject's data key, so its plaintext is never in the database's files; erasing the
//! subject destroys the key and the evidence, appends an `erasure` leaf, keeps every proof of
//! the log verifiable, and refuses anything more about the subject.

use atp_core::erasure::erasure_data_hash;
use atp_core::log_entry::entry_leaf_hash;
use atp_core::tlog;
use atp_store::{
    AuditedWrite, LeafKind, NewTrustEvidence, StoreError, SubjectErasure, TrustEvidenceFilter,
};

use crate::Backend;

const ERASED: &str = "did:atp:erasure-subject";
const KEPT: &str = "did:atp:kept-subject";

/// Evidence whose body carries `marker`, a value the raw files are searched for.
fn evidence(issuer: &str, subject: &str, marker: &str) -> NewTrustEvidence {
    let json = format!("{{\"subject\":\"{subject}\",\"attribute\":\"{marker}\"}}");
    NewTrustEvidence {
        content_hash: atp_crypto::sha256(json.as_bytes()),
        kind: "Endorsement".into(),
        issuer: issuer.into(),
        subject: subject.into(),
        created_ms: 1_700_000_000_000,
        evidence_json: json,
    }
}

fn marker(name: &str) -> String {
    let mut nonce = [0u8; 8];
    atp_crypto::random_bytes(&mut nonce).unwrap();
    let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}-{hex}")
}

/// Every byte of every regular file under `dirs`.
fn contains_anywhere(dirs: &[std::path::PathBuf], needle: &[u8]) -> Option<std::path::PathBuf> {
    let mut stack: Vec<std::path::PathBuf> = dirs.to_vec();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap().flatten() {
                stack.push(entry.path());
            }
        } else if meta.is_file() {
            // A file removed between listing and reading (a recycled segment) holds nothing.
            let Ok(bytes) = std::fs::read(&path) else { continue };
            if bytes.windows(needle.len()).any(|w| w == needle) {
                return Some(path);
            }
        }
    }
    None
}

async fn erase(store: &dyn atp_store::Store, subject: &str) -> Result<SubjectErasure, StoreError> {
    store
        .write_audited(AuditedWrite::EraseSubject { subject: subject.into() }, Vec::new())
        .await?
        .erased()
}

/// Evidence is sealed at rest and opened on read; erasure destroys it and its key, keeps the
/// log verifiable, refuses new evidence about the subject, and is idempotent.
pub async fn erasure_destroys_the_key_and_the_evidence_and_keeps_the_log(backend: &dyn Backend) {
    let store = backend.open().await;
    let (secret, kept_secret, by_erased) = (marker("erased"), marker("kept"), marker("by-erased"));
    let about_erased = evidence("did:atp:issuer", ERASED, &secret);
    let about_kept = evidence("did:atp:issuer", KEPT, &kept_secret);
    // Evidence the erased subject signed about someone else is that someone's record.
    let signed_by_erased = evidence(ERASED, KEPT, &by_erased);
    let first = store.record_trust_evidence(about_erased.clone()).await.unwrap();
    store.record_trust_evidence(about_kept.clone()).await.unwrap();
    store.record_trust_evidence(signed_by_erased.clone()).await.unwrap();

    // Read back in clear, stored sealed: the plaintext is in no file of the database, while a
    // value stored in clear (the subject's DID) is found by the same search.
    let page = store
        .list_trust_evidence(
            &TrustEvidenceFilter { subject: Some(ERASED.into()), ..Default::default() },
            0,
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.evidence.len(), 1);
    assert_eq!(page.evidence[0].evidence_json, about_erased.evidence_json);
    let files = backend.raw_files().await;
    assert!(contains_anywhere(&files, ERASED.as_bytes()).is_some(), "the search finds nothing");
    for m in [&secret, &kept_secret, &by_erased] {
        assert_eq!(contains_anywhere(&files, m.as_bytes()), None, "{m} is stored in clear");
    }
    let key = backend.subject_key(ERASED).await.expect("the subject has a data key");
    assert_eq!(key.len(), 32);
    assert!(contains_anywhere(&files, &key).is_some(), "the key's bytes are not in the files");

    let size_before = store.log_size().await.unwrap();
    let root_before = store.root_at(size_before).await.unwrap();
    let erasure = erase(store.as_ref(), ERASED).await.unwrap();
    assert!(!erasure.already_erased);
    assert_eq!(erasure.subject, ERASED);
    assert_eq!(erasure.evidence_erased, 1);
    assert_eq!(erasure.log_index, size_before);
    let leaf = &store.get_entries(erasure.log_index, 1).await.unwrap()[0];
    assert_eq!(leaf.kind, LeafKind::Erasure);
    assert_eq!(leaf.data_hash, erasure_data_hash(ERASED, erasure.erased_at_ms, 1));

    // Gone from every read, and from the trust computation's scan.
    let all = store.scan_trust_evidence(None, 100).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|e| e.subject != ERASED));
    assert!(all.iter().any(|e| e.evidence_json == signed_by_erased.evidence_json));
    assert!(all.iter().any(|e| e.evidence_json == about_kept.evidence_json));
    assert_eq!(store.stats().await.unwrap().trust_evidence, 2);
    assert_eq!(backend.subject_key(ERASED).await, None);
    let files = backend.raw_files().await;
    if backend.shreds_in_place() {
        assert_eq!(contains_anywhere(&files, &key), None, "the destroyed key is still on disk");
    }
    assert_eq!(contains_anywhere(&files, secret.as_bytes()), None);

    // The log: the erased evidence's leaf is still proven in the new tree, and the old tree is
    // consistent with it.
    let size = store.log_size().await.unwrap();
    let root = store.root_at(size).await.unwrap();
    let leaf_hash = entry_leaf_hash(LeafKind::Evidence, &about_erased.content_hash);
    let proof = store.inclusion_proof(first.log_index, size).await.unwrap();
    tlog::verify_inclusion(first.log_index, size, &leaf_hash, &proof, &root).unwrap();
    let proof = store.consistency_proof(size_before, size).await.unwrap();
    tlog::verify_consistency(size_before, size, &root_before, &root, &proof).unwrap();

    // Nothing more about the subject is stored, and a second erasure changes nothing.
    let stats = store.stats().await.unwrap();
    let err = store.record_trust_evidence(evidence("did:atp:other", ERASED, "x")).await;
    assert!(matches!(err, Err(StoreError::SubjectErased { .. })), "{err:?}");
    assert_eq!(err.unwrap_err().code(), "SUBJECT_ERASED");
    let again = erase(store.as_ref(), ERASED).await.unwrap();
    assert!(again.already_erased);
    assert_eq!((again.log_index, again.erased_at_ms), (erasure.log_index, erasure.erased_at_ms));
    assert_eq!(store.stats().await.unwrap(), stats);
    assert_eq!(store.log_size().await.unwrap(), size);

    // A subject that is not a DID is refused, and nothing is stored.
    let err = erase(store.as_ref(), "not a did").await.unwrap_err();
    assert_eq!(err.code(), "DID_INVALID");
    assert_eq!(store.log_size().await.unwrap(), size);

    // A reopened store (another node) reads the same.
    let other = backend.open().await;
    assert_eq!(other.scan_trust_evidence(None, 100).await.unwrap(), all);
}
