//! `PgStore` against a real PostgreSQL server (Debian's package, started by the test in a
//! temporary directory on 127.0.0.1): the same conformance suite as the embedded SQLite store,
//! each case on a database of its own.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use atp_enterprise_ha::{PgConfig, PgStore};
use atp_store::Store;
use atp_store_conformance::{Backend, OpenFuture};
use atp_test_node::postgres::{Durability, PgServer};

/// One server for the whole test binary; it stops when the binary exits (its watchdog).
fn server() -> Option<&'static PgServer> {
    static SERVER: OnceLock<Option<PgServer>> = OnceLock::new();
    SERVER.get_or_init(|| PgServer::start(Durability::Relaxed)).as_ref()
}

/// A fresh database; every open is a `PgStore` on it (a second open is a second node).
struct Postgres {
    url: String,
}

impl Backend for Postgres {
    fn open(&self) -> OpenFuture<'_> {
        Box::pin(async move {
            let options = self.url.parse().unwrap();
            let store: Arc<dyn Store> =
                Arc::new(PgStore::connect(options, &PgConfig::default()).await.unwrap());
            store
        })
    }

    fn refuse_audit_inserts(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'the audit table refuses rows'; END $$; \
                 CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
                 FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        })
    }

    fn raw_files(&self) -> Pin<Box<dyn Future<Output = Vec<std::path::PathBuf>> + Send + '_>> {
        Box::pin(async move {
            // Committed rows are in the write-ahead log; CHECKPOINT also writes the pages.
            tokio::task::spawn_blocking(|| server().unwrap().psql("CHECKPOINT"))
                .await
                .unwrap()
                .unwrap();
            vec![server().unwrap().data_dir()]
        })
    }

    fn subject_key<'a>(
        &'a self,
        subject: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + 'a>> {
        Box::pin(async move {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            let key = sqlx::query_scalar("SELECT data_key FROM subject_keys WHERE subject = $1")
                .bind(subject)
                .fetch_optional(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
            key
        })
    }

    fn shreds_in_place(&self) -> bool {
        false
    }
}

/// `None` outside CI when PostgreSQL is not installed (`PgServer::start` printed a SKIP).
async fn fresh() -> Option<Postgres> {
    let server = server()?;
    let db = tokio::task::spawn_blocking(|| server.create_database()).await.unwrap().unwrap();
    Some(Postgres { url: server.url(&db) })
}

atp_store_conformance::conformance_tests!(fresh());
