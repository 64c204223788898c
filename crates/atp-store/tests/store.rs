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
