//! The audit trail on PostgreSQL: events stored in the transaction of their change (one
//! multi-row statement), batches sealed under the log's lock (so two nodes never seal one event
//! twice), pages read on the pool.
//!
//! Sequence numbers come from an identity column, so a transaction that took a lower number can
//! commit after one that took a higher. Sealing takes the unsealed events it sees in sequence
//! order; an event committed later joins the next batch. A batch names its events by number,
//! not by range, so nothing is lost or sealed twice.

use atp_core::audit::batch_data_hash;
use atp_core::log_entry::LeafKind;
use atp_store::StoreError;
use atp_store::audit::{
    AuditBatchRow, AuditEntry, AuditEventRow, AuditQuery, DELETE_EXPIRED_AUDIT_EVENTS_SQL,
    EXPIRE_AUDIT_BATCHES_SQL, INSERT_AUDIT_BATCH_SQL, LAST_AUDIT_BATCH_SQL, LIST_AUDIT_BATCHES_SQL,
    LIST_AUDIT_EVENTS_SQL, StoredAuditBatch, StoredAuditEvent, UNEXPIRED_AUDIT_BATCHES_SQL,
    UNSEALED_AUDIT_EVENTS_SQL, audit_batch_record, audit_batch_reference, audit_event_record,
    check_audit_page, plan_expiry, plan_seal,
};
use atp_store::backend::{to_hash, to_i64, to_u64};
use sqlx::{PgConnection, PgPool};

use super::Result;
use super::read::pool_error;
use super::write::Write;

/// Stores `entries` in the open transaction, one statement.
pub(super) async fn insert_entries(conn: &mut PgConnection, entries: &[AuditEntry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO audit_events (time_ms, code, body, digest) \
         SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BYTEA[], $4::BYTEA[])",
    )
    .bind(entries.iter().map(AuditEntry::time_ms).collect::<Vec<_>>())
    .bind(entries.iter().map(AuditEntry::code).collect::<Vec<_>>())
    .bind(entries.iter().map(AuditEntry::body).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| &e.digest()[..]).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores events that record no change, in a transaction of their own (no log lock).
pub(super) async fn insert_alone(pool: &PgPool, entries: &[AuditEntry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await.map_err(pool_error)?;
    insert_entries(&mut tx, entries).await?;
    tx.commit().await.map_err(|e| StoreError::WriteFailed(format!("commit: {e}")))
}

/// Seals the oldest unsealed events into the next batch and appends its leaf, inside `w`.
pub(super) async fn seal(w: &mut Write, max_events: u32) -> Result<Option<StoredAuditBatch>> {
    let latest: Option<(i64, Vec<u8>)> =
        sqlx::query_as(LAST_AUDIT_BATCH_SQL).fetch_optional(w.connection()).await?;
    let latest = match latest {
        Some((number, head)) => {
            Some((to_u64(number, "audit batch")?, to_hash(head, "audit head")?))
        }
        None => None,
    };
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(UNSEALED_AUDIT_EVENTS_SQL)
        .bind(i64::from(max_events))
        .fetch_all(w.connection())
        .await?;
    let unsealed = rows
        .into_iter()
        .map(|(seq, digest)| Ok((to_u64(seq, "audit sequence")?, to_hash(digest, "audit digest")?)))
        .collect::<Result<Vec<_>>>()?;
    let Some((batch, chains)) = plan_seal(latest, &unsealed) else { return Ok(None) };
    let number = to_i64(batch.number, "audit batch")?;
    let seqs = unsealed
        .iter()
        .map(|(seq, _)| to_i64(*seq, "audit sequence"))
        .collect::<Result<Vec<_>>>()?;
    sqlx::query(
        "UPDATE audit_events SET batch = $1, chain = t.c \
         FROM UNNEST($2::BIGINT[], $3::BYTEA[]) AS t(s, c) WHERE audit_events.seq = t.s",
    )
    .bind(number)
    .bind(seqs)
    .bind(chains.iter().map(|c| c.to_vec()).collect::<Vec<_>>())
    .execute(w.connection())
    .await?;
    let log_index = w
        .append_leaf(
            LeafKind::AuditBatch,
            &batch_data_hash(&batch),
            Some(audit_batch_reference(batch.number)),
        )
        .await?;
    let now = w.now();
    sqlx::query(INSERT_AUDIT_BATCH_SQL)
        .bind(number)
        .bind(to_i64(batch.first_seq, "audit sequence")?)
        .bind(to_i64(batch.last_seq, "audit sequence")?)
        .bind(to_i64(batch.count, "audit batch size")?)
        .bind(&batch.previous[..])
        .bind(&batch.head[..])
        .bind(to_i64(log_index, "log index")?)
        .bind(now)
        .execute(w.connection())
        .await?;
    Ok(Some(StoredAuditBatch { batch, log_index, sealed_at_ms: now, expired_at_ms: None }))
}

/// Deletes the events of the oldest batches sealed before `sealed_before_ms` and marks them
/// expired, in one transaction; returns how many batches expired. Two nodes expiring at once
/// delete the same rows, and only one of them marks each batch.
pub(super) async fn expire(pool: &PgPool, sealed_before_ms: i64, max_batches: u32) -> Result<u64> {
    let mut tx = pool.begin().await.map_err(pool_error)?;
    let oldest: Vec<(i64, i64)> = sqlx::query_as(UNEXPIRED_AUDIT_BATCHES_SQL)
        .bind(i64::from(max_batches))
        .fetch_all(&mut *tx)
        .await?;
    let Some(last) = plan_expiry(&oldest, sealed_before_ms) else { return Ok(0) };
    sqlx::query(DELETE_EXPIRED_AUDIT_EVENTS_SQL).bind(last).execute(&mut *tx).await?;
    let expired = sqlx::query(EXPIRE_AUDIT_BATCHES_SQL)
        .bind(atp_store::backend::now_ms())
        .bind(last)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await.map_err(|e| StoreError::WriteFailed(format!("commit: {e}")))?;
    Ok(expired)
}

/// A page of events.
pub(super) async fn list_events(pool: &PgPool, query: AuditQuery) -> Result<Vec<StoredAuditEvent>> {
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
    pool: &PgPool,
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
