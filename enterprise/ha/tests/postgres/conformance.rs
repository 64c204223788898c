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

/// What only this backend needs: a node of an older version, still running against the
/// migrated schema, cannot store evidence in clear or about an erased subject (the trigger of
/// migration 0007); the database refuses the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_unsealed_evidence_and_erased_subjects() {
    use sqlx::Connection as _;
    let Some(backend) = fresh().await else { return };
    let store = backend.open().await;
    let erased = atp_store::AuditedWrite::EraseSubject { subject: "did:atp:gone".into() };
    store.write_audited(erased, Vec::new()).await.unwrap();
    let leaf = store.log_size().await.unwrap() - 1;
    let mut conn = sqlx::PgConnection::connect(&backend.url).await.unwrap();
    let insert = |subject: &'static str, sealed: Option<Vec<u8>>| {
        sqlx::query(
            "INSERT INTO trust_evidence (log_index, content_hash, kind, issuer, subject, \
             created_ms, evidence_json, stored_at_ms, sealed_body) \
             VALUES ($1, $2, 'Endorsement', 'did:atp:i', $3, 0, '{\"old\":1}', 0, $4)",
        )
        .bind(i64::try_from(leaf).unwrap())
        .bind(vec![7u8; 32])
        .bind(subject)
        .bind(sealed)
    };
    let e = insert("did:atp:someone", None).execute(&mut conn).await.unwrap_err();
    assert!(e.to_string().contains("must be stored sealed"), "{e}");
    let e = insert("did:atp:gone", Some(vec![1; 40])).execute(&mut conn).await.unwrap_err();
    assert!(e.to_string().contains("was erased"), "{e}");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM trust_evidence")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    conn.close().await.unwrap();
}

/// An upgraded database: trust evidence stored in clear before migration 0007 is sealed when a
/// node connects, and reads back the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_stored_in_clear_before_sealing_is_sealed_at_connect() {
    use sqlx::Connection as _;
    let Some(backend) = fresh().await else { return };
    let store = backend.open().await;
    let fork = atp_store::NewEvidence {
        subject: "did:atp:old".into(),
        evidence_type: "kel-fork".into(),
        body: b"fork".to_vec(),
    };
    let leaf = store.append_evidence(fork).await.unwrap();
    let json = "{\"attribute\":\"stored before sealing\"}";
    // As a node of the previous version wrote it (its trigger did not exist yet).
    let mut conn = sqlx::PgConnection::connect(&backend.url).await.unwrap();
    sqlx::raw_sql("ALTER TABLE trust_evidence DISABLE TRIGGER trust_evidence_sealed")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO trust_evidence (log_index, content_hash, kind, issuer, subject, created_ms, \
         evidence_json, stored_at_ms) VALUES ($1, $2, 'Endorsement', 'did:atp:i', 'did:atp:old', \
         0, $3, 0)",
    )
    .bind(i64::try_from(leaf).unwrap())
    .bind(vec![9u8; 32])
    .bind(json)
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::raw_sql("ALTER TABLE trust_evidence ENABLE TRIGGER trust_evidence_sealed")
        .execute(&mut conn)
        .await
        .unwrap();

    let node = backend.open().await;
    let all = node.scan_trust_evidence(None, 10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].evidence_json, json);
    let (body, sealed): (String, bool) =
        sqlx::query_as("SELECT evidence_json, sealed_body IS NOT NULL FROM trust_evidence")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((body.as_str(), sealed), ("", true));
    conn.close().await.unwrap();
}
