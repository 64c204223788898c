//! Trust evidence sealed under its subject's data key, and erasure, on SQLite (the shared rules
//! are in `crate::backend::subject_data`). Run by the writer inside its open savepoint.

use atp_core::erasure::erasure_data_hash;
use atp_core::log_entry::LeafKind;
use atp_crypto::sealing::DataKey;
use sqlx::{SqliteConnection, SqlitePool};

use super::log_append::append_leaf;
use crate::backend::subject_data::{
    CLEAR_EVIDENCE_REFERENCES_SQL, DELETE_SUBJECT_EVIDENCE_SQL, DELETE_SUBJECT_KEY_SQL,
    ERASED_SUBJECT_SQL, ErasureRow, INSERT_ERASURE_SQL, INSERT_SEALED_EVIDENCE_SQL,
    INSERT_SUBJECT_KEY_SQL, RESEAL_ROWS_PER_TRANSACTION, SEAL_EVIDENCE_ROW_SQL, SUBJECT_KEY_SQL,
    UNSEALED_EVIDENCE_SQL, UnsealedRow, erased, erasure_record, erasure_reference, new_data_key,
    reseal, seal_evidence, stored_data_key,
};
use crate::backend::{Frontier, to_i64, to_u64, trust_evidence_reference};
use crate::error::Result;
use crate::model::{NewTrustEvidence, RecordedTrustEvidence, SubjectErasure};

/// Looks the content hash up inside the write transaction, so that two submissions of the same
/// body can never both append a leaf.
pub(super) async fn record_trust_evidence(
    conn: &mut SqliteConnection,
    frontier: &mut Frontier,
    evidence: NewTrustEvidence,
    now: i64,
) -> Result<RecordedTrustEvidence> {
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT log_index FROM trust_evidence WHERE content_hash = $1")
            .bind(evidence.content_hash.as_slice())
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(index) = existing {
        return Ok(RecordedTrustEvidence {
            log_index: to_u64(index, "log index")?,
            duplicate: true,
        });
    }
    let key = subject_key(conn, &evidence.subject, now).await?;
    let sealed = seal_evidence(&key, &evidence)?;
    let reference = trust_evidence_reference(&evidence);
    let index = append_leaf(
        conn,
        frontier,
        LeafKind::Evidence,
        &evidence.content_hash,
        Some(reference),
        now,
    )
    .await?;
    sqlx::query(INSERT_SEALED_EVIDENCE_SQL)
        .bind(to_i64(index, "log index")?)
        .bind(evidence.content_hash.as_slice())
        .bind(&evidence.kind)
        .bind(&evidence.issuer)
        .bind(&evidence.subject)
        .bind(evidence.created_ms)
        .bind(now)
        .bind(sealed)
        .execute(&mut *conn)
        .await?;
    Ok(RecordedTrustEvidence { log_index: index, duplicate: false })
}

/// The data key of `subject`, made on first use; refuses an erased subject.
async fn subject_key(conn: &mut SqliteConnection, subject: &str, now: i64) -> Result<DataKey> {
    let erasure: Option<ErasureRow> =
        sqlx::query_as(ERASED_SUBJECT_SQL).bind(subject).fetch_optional(&mut *conn).await?;
    if erasure.is_some() {
        return Err(erased(subject));
    }
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar(SUBJECT_KEY_SQL).bind(subject).fetch_optional(&mut *conn).await?;
    if let Some(bytes) = stored {
        return stored_data_key(bytes);
    }
    let key = new_data_key()?;
    sqlx::query(INSERT_SUBJECT_KEY_SQL)
        .bind(subject)
        .bind(&key.as_bytes()[..])
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(key)
}

/// Destroys `subject`'s key and the evidence about it, and records the erasure with its leaf.
pub(super) async fn erase_subject(
    conn: &mut SqliteConnection,
    frontier: &mut Frontier,
    subject: String,
    now: i64,
) -> Result<SubjectErasure> {
    let earlier: Option<ErasureRow> =
        sqlx::query_as(ERASED_SUBJECT_SQL).bind(&subject).fetch_optional(&mut *conn).await?;
    if let Some(row) = earlier {
        return erasure_record(row, true);
    }
    sqlx::query(CLEAR_EVIDENCE_REFERENCES_SQL).bind(&subject).execute(&mut *conn).await?;
    let erased_rows = sqlx::query(DELETE_SUBJECT_EVIDENCE_SQL)
        .bind(&subject)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query(DELETE_SUBJECT_KEY_SQL).bind(&subject).execute(&mut *conn).await?;
    let data_hash = erasure_data_hash(&subject, now, erased_rows);
    let reference = erasure_reference(&subject);
    let index =
        append_leaf(conn, frontier, LeafKind::Erasure, &data_hash, Some(reference), now).await?;
    let row =
        (subject, now, to_i64(erased_rows, "erased evidence count")?, to_i64(index, "log index")?);
    sqlx::query(INSERT_ERASURE_SQL)
        .bind(&row.0)
        .bind(row.1)
        .bind(row.2)
        .bind(row.3)
        .execute(&mut *conn)
        .await?;
    erasure_record(row, false)
}

/// Checkpoints the write-ahead log into the database file and truncates it to nothing: the
/// pages that held a destroyed key leave the log (the database file's copies were zeroed by
/// `secure_delete`). A reader that holds the log open makes the checkpoint wait for it up to
/// the busy timeout; if it still cannot finish, the log keeps the old frames until the next
/// erasure or the automatic checkpoint reuses them, and a warning says so.
pub(super) async fn empty_write_ahead_log(pool: &SqlitePool) {
    match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(pool)
        .await
    {
        Ok((0, _, _)) => {}
        Ok((busy, log, done)) => {
            tracing::warn!(
                busy,
                log,
                done,
                "atp-store: the write-ahead log could not be emptied after an erasure"
            );
        }
        Err(e) => tracing::warn!(error = %e, "atp-store: checkpoint after an erasure failed"),
    }
}

/// Seals the trust evidence stored before migration 0011, in transactions of a few hundred
/// rows, before the writer starts: after an upgrade no body stays in clear (`secure_delete`
/// zeroes the old cells). Returns how many rows it sealed.
pub(super) async fn seal_old_rows(pool: &SqlitePool) -> Result<u64> {
    let mut sealed = 0;
    loop {
        let mut tx = pool.begin().await?;
        let rows: Vec<UnsealedRow> = sqlx::query_as(UNSEALED_EVIDENCE_SQL)
            .bind(RESEAL_ROWS_PER_TRANSACTION)
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            // The pool's one connection goes back before the checkpoint takes it.
            tx.rollback().await?;
            if sealed > 0 {
                // The write-ahead log still holds the pages as they were, plaintext included.
                empty_write_ahead_log(pool).await;
            }
            return Ok(sealed);
        }
        let now = crate::backend::now_ms();
        for row in &rows {
            let key = subject_key(&mut tx, &row.2, now).await?;
            sqlx::query(SEAL_EVIDENCE_ROW_SQL)
                .bind(reseal(&key, row)?)
                .bind(row.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        sealed += rows.len() as u64;
    }
}
