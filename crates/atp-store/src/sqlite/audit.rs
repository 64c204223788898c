//! The audit trail on SQLite: events stored inside the writer's open savepoint, batches sealed
//! by the writer, pages read on the read pool.

use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

/// Rows per sealing statement (two bound values each, under SQLite's historical 999).
const SEAL_ROWS_PER_STATEMENT: usize = 400;

use super::log_append::append_leaf;
use crate::audit::{
    AuditBatchRow, AuditEntry, AuditEventRow, AuditQuery, DELETE_EXPIRED_AUDIT_EVENTS_SQL,
    EXPIRE_AUDIT_BATCHES_SQL, INSERT_AUDIT_BATCH_SQL, INSERT_AUDIT_EVENT_SQL, LAST_AUDIT_BATCH_SQL,
    LIST_AUDIT_BATCHES_SQL, LIST_AUDIT_EVENTS_SQL, StoredAuditBatch, StoredAuditEvent,
    UNEXPIRED_AUDIT_BATCHES_SQL, UNSEALED_AUDIT_EVENTS_SQL, audit_batch_record,
    audit_batch_reference, audit_event_record, check_audit_page, plan_expiry, plan_seal,
};
use crate::backend::{Frontier, to_hash, to_i64, to_u64};
use crate::error::Result;
use atp_core::audit::batch_data_hash;
use atp_core::log_entry::LeafKind;

/// Stores `entries` on the writer's connection (inside the caller's transaction).
pub(super) async fn insert_entries(
    conn: &mut SqliteConnection,
    entries: &[AuditEntry],
) -> Result<()> {
    for entry in entries {
        sqlx::query(INSERT_AUDIT_EVENT_SQL)
            .bind(entry.time_ms())
            .bind(entry.code())
            .bind(entry.body())
            .bind(&entry.digest()[..])
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Seals the oldest unsealed events into the next batch and appends its leaf.
pub(super) async fn seal(
    conn: &mut SqliteConnection,
    frontier: &mut Frontier,
    max_events: u32,
    now: i64,
) -> Result<Option<StoredAuditBatch>> {
    let latest: Option<(i64, Vec<u8>)> =
        sqlx::query_as(LAST_AUDIT_BATCH_SQL).fetch_optional(&mut *conn).await?;
    let latest = match latest {
        Some((number, head)) => {
            Some((to_u64(number, "audit batch")?, to_hash(head, "audit head")?))
        }
        None => None,
    };
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(UNSEALED_AUDIT_EVENTS_SQL)
        .bind(i64::from(max_events))
        .fetch_all(&mut *conn)
        .await?;
    let unsealed = rows
        .into_iter()
        .map(|(seq, digest)| Ok((to_u64(seq, "audit sequence")?, to_hash(digest, "audit digest")?)))
        .collect::<Result<Vec<_>>>()?;
    let Some((batch, chains)) = plan_seal(latest, &unsealed) else { return Ok(None) };
    let number = to_i64(batch.number, "audit batch")?;
    // A few hundred rows per statement: a statement per row kept the single writer busy for
    // tens of milliseconds per sealed batch, in front of every other write.
    let rows: Vec<(i64, &[u8])> = unsealed
        .iter()
        .zip(&chains)
        .map(|((seq, _), chain)| Ok((to_i64(*seq, "audit sequence")?, &chain[..])))
        .collect::<Result<_>>()?;
    for chunk in rows.chunks(SEAL_ROWS_PER_STATEMENT) {
        let mut qb = QueryBuilder::<Sqlite>::new("WITH sealed (s, c) AS (");
        qb.push_values(chunk, |mut b, (seq, chain)| {
            b.push_bind(*seq).push_bind(*chain);
        });
        qb.push(") UPDATE audit_events SET batch = ");
        qb.push_bind(number);
        qb.push(", chain = (SELECT c FROM sealed WHERE sealed.s = audit_events.seq) ");
        qb.push("WHERE seq IN (SELECT s FROM sealed)");
        qb.build().execute(&mut *conn).await?;
    }
    let log_index = append_leaf(
        conn,
        frontier,
        LeafKind::AuditBatch,
        &batch_data_hash(&batch),
        Some(audit_batch_reference(batch.number)),
        now,
    )
    .await?;
    sqlx::query(INSERT_AUDIT_BATCH_SQL)
        .bind(number)
        .bind(to_i64(batch.first_seq, "audit sequence")?)
        .bind(to_i64(batch.last_seq, "audit sequence")?)
        .bind(to_i64(batch.count, "audit batch size")?)
        .bind(&batch.previous[..])
        .bind(&batch.head[..])
        .bind(to_i64(log_index, "log index")?)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(Some(StoredAuditBatch { batch, log_index, sealed_at_ms: now, expired_at_ms: None }))
}

/// Deletes the events of the oldest batches sealed before `sealed_before_ms` and marks them
/// expired; returns how many batches expired.
pub(super) async fn expire(
    conn: &mut SqliteConnection,
    sealed_before_ms: i64,
    max_batches: u32,
    now: i64,
) -> Result<u64> {
    let oldest: Vec<(i64, i64)> = sqlx::query_as(UNEXPIRED_AUDIT_BATCHES_SQL)
        .bind(i64::from(max_batches))
        .fetch_all(&mut *conn)
        .await?;
    let Some(last) = plan_expiry(&oldest, sealed_before_ms) else { return Ok(0) };
    sqlx::query(DELETE_EXPIRED_AUDIT_EVENTS_SQL).bind(last).execute(&mut *conn).await?;
    let expired = sqlx::query(EXPIRE_AUDIT_BATCHES_SQL)
        .bind(now)
        .bind(last)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(expired)
}

/// A page of events.
pub(super) async fn list_events(
    pool: &SqlitePool,
    query: AuditQuery,
) -> Result<Vec<StoredAuditEvent>> {
    check_audit_page(query.limit)?;
    let batch = query.batch.map(|b| to_i64(b, "audit batch")).transpose()?;
    let rows: Vec<AuditEventRow> = sqlx::query_as(LIST_AUDIT_EVENTS_SQL)
        .bind(to_i64(query.after_seq, "audit sequence")?)
        .bind(query.code)
        .bind(query.from_ms)
        .bind(query.to_ms)
        .bind(batch)
        .bind(i64::from(query.limit))
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(audit_event_record).collect()
}

/// A page of batches.
pub(super) async fn list_batches(
    pool: &SqlitePool,
    after: u64,
    limit: u32,
) -> Result<Vec<StoredAuditBatch>> {
    check_audit_page(limit)?;
    let rows: Vec<AuditBatchRow> = sqlx::query_as(LIST_AUDIT_BATCHES_SQL)
        .bind(to_i64(after, "audit batch")?)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(audit_batch_record).collect()
}
