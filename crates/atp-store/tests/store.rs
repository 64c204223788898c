//! `SqliteStore` against a real SQLite database in a temporary directory: the conformance suite
//! every backend passes (atp-store-conformance), and what only this backend does, group commit.
#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use atp_store::{SqliteConfig, SqliteStore, Store};
use atp_store_conformance::cases::log_and_kel;
use atp_store_conformance::{Backend, OpenFuture};
use common::TestDir;

/// A fresh data directory; every open is a `SqliteStore` on it.
struct Sqlite(TestDir);

impl Backend for Sqlite {
    fn open(&self) -> OpenFuture<'_> {
        Box::pin(async move {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(self.0.path()).await.unwrap());
            store
        })
    }

    fn refuse_audit_inserts(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(refuse_audit_inserts(self.0.path()))
    }

    fn raw_files(&self) -> Pin<Box<dyn Future<Output = Vec<std::path::PathBuf>> + Send + '_>> {
        Box::pin(async move { vec![self.0.path().to_path_buf()] })
    }

    fn subject_key<'a>(
        &'a self,
        subject: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + 'a>> {
        Box::pin(subject_key(self.0.path(), subject))
    }

    fn shreds_in_place(&self) -> bool {
        true
    }
}

/// A trigger that aborts every insert into `audit_events`, created through a connection of its
/// own on the store's database file.
async fn refuse_audit_inserts(dir: &std::path::Path) {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", dir.join(atp_store::DB_FILE_NAME).display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
         BEGIN SELECT RAISE(ABORT, 'the audit table refuses rows'); END;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// A subject's data key, read through a read-only connection of its own.
async fn subject_key(dir: &std::path::Path, subject: &str) -> Option<Vec<u8>> {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}?mode=ro", dir.join(atp_store::DB_FILE_NAME).display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let key = sqlx::query_scalar("SELECT data_key FROM subject_keys WHERE subject = $1")
        .bind(subject)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    key
}

async fn fresh() -> Option<Sqlite> {
    Some(Sqlite(TestDir::new("conformance")))
}

atp_store_conformance::conformance_tests!(fresh());

/// A data directory whose stores wait 50 ms for more requests before committing, so that
/// concurrent requests surely share a group-commit batch.
struct LingeringSqlite(TestDir);

impl Backend for LingeringSqlite {
    fn open(&self) -> OpenFuture<'_> {
        Box::pin(async move {
            let config =
                SqliteConfig { batch_linger: Duration::from_millis(50), ..SqliteConfig::default() };
            let store = SqliteStore::open_with(self.0.path(), config).await.unwrap();
            let store: Arc<dyn Store> = Arc::new(store);
            store
        })
    }

    fn refuse_audit_inserts(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(refuse_audit_inserts(self.0.path()))
    }

    fn raw_files(&self) -> Pin<Box<dyn Future<Output = Vec<std::path::PathBuf>> + Send + '_>> {
        Box::pin(async move { vec![self.0.path().to_path_buf()] })
    }

    fn subject_key<'a>(
        &'a self,
        subject: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + 'a>> {
        Box::pin(subject_key(self.0.path(), subject))
    }

    fn shreds_in_place(&self) -> bool {
        true
    }
}

/// In one group-commit batch, requests that fail roll back to their savepoints and the others
/// commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_does_not_fail_its_batch() {
    let backend = LingeringSqlite(TestDir::new("batch"));
    log_and_kel::a_failed_request_does_not_fail_the_others(&backend).await;
}

/// Events of one DID submitted back to back land in one batch: the batch's view of the head
/// advances from one to the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_events_of_one_did_commit_in_one_batch() {
    let backend = LingeringSqlite(TestDir::new("pipelined"));
    log_and_kel::pipelined_events_of_one_did_all_commit(&backend).await;
}

/// An upgraded store: trust evidence stored in clear before migration 0011 is sealed when the
/// store opens, reads back the same, and its plaintext leaves the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_stored_in_clear_before_sealing_is_sealed_at_open() {
    use sqlx::Connection as _;
    let dir = TestDir::new("reseal");
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let fork = atp_store::NewEvidence {
        subject: "did:atp:old".into(),
        evidence_type: "kel-fork".into(),
        body: b"fork".to_vec(),
    };
    let leaf = store.append_evidence(fork).await.unwrap();
    store.close().await.unwrap();
    let marker = format!("old-attribute-{}-{leaf}", std::process::id());
    let json = format!("{{\"attribute\":\"{marker}\"}}");
    // As a store of the previous version wrote it: the body in clear, no seal.
    let url = format!("sqlite://{}", dir.path().join(atp_store::DB_FILE_NAME).display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO trust_evidence (log_index, content_hash, kind, issuer, subject, created_ms, \
         evidence_json, stored_at_ms) VALUES ($1, $2, 'Endorsement', 'did:atp:i', 'did:atp:old', \
         0, $3, 0)",
    )
    .bind(i64::try_from(leaf).unwrap())
    .bind(&atp_crypto::sha256(json.as_bytes())[..])
    .bind(&json)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let on_disk = |needle: &str| {
        std::fs::read_dir(dir.path()).unwrap().flatten().any(|f| {
            std::fs::read(f.path())
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
    };
    assert!(on_disk(&marker), "the search finds the plaintext row");

    let store = SqliteStore::open(dir.path()).await.unwrap();
    let all = store.scan_trust_evidence(None, 10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].evidence_json, json);
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let (body, sealed): (String, bool) =
        sqlx::query_as("SELECT evidence_json, sealed_body IS NOT NULL FROM trust_evidence")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    assert_eq!((body.as_str(), sealed), ("", true));
    assert!(!on_disk(&marker), "the plaintext is still in the files");
    store.close().await.unwrap();
}
