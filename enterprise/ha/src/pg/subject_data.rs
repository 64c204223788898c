//! Trust evidence sealed under its subject's data key, and erasure, on PostgreSQL (the shared
//! rules are in `atp_store::backend::subject_data`). Both run under the log's lock, so an
//! erasure and a write about the same subject never interleave.
//!
//! PostgreSQL keeps a deleted row's bytes in its page until the space is reused and in its
//! write-ahead log until the segment is recycled: the destroyed key can outlive the erasure
//! there for a while, the plaintext never (docs/audit.md, "Erasure").

use atp_core::erasure::erasure_data_hash;
use atp_core::log_entry::LeafKind;
use atp_store::backend::subject_data::{
    CLEAR_EVIDENCE_REFERENCES_SQL, DELETE_SUBJECT_EVIDENCE_SQL, DELETE_SUBJECT_KEY_SQL, DataKey,
    ERASED_SUBJECT_SQL, ErasureRow, INSERT_ERASURE_SQL, INSERT_SEALED_EVIDENCE_SQL,
    INSERT_SUBJECT_KEY_SQL, RESEAL_ROWS_PER_TRANSACTION, SEAL_EVIDENCE_ROW_SQL, SUBJECT_KEY_SQL,
    UNSEALED_EVIDENCE_SQL, UnsealedRow, erased, erasure_record, erasure_reference, new_data_key,
    reseal, seal_evidence, stored_data_key,
};
use atp_store::backend::{to_i64, to_u64, trust_evidence_reference};
use atp_store::{NewTrustEvidence, RecordedTrustEvidence, SubjectErasure};

use super::Result;
use super::write::Write;

/// Looks the content hash up under the write lock, so that two submissions of the same body can
/// never both append a leaf.
pub(super) async fn record_trust_evidence(
    w: &mut Write,
    evidence: NewTrustEvidence,
) -> Result<RecordedTrustEvidence> {
    let existing: Option<i64> =
        sqlx::query_scalar("SELECT log_index FROM trust_evidence WHERE content_hash = $1")
            .bind(evidence.content_hash.as_slice())
            .fetch_optional(w.connection())
            .await?;
    if let Some(index) = existing {
        return Ok(RecordedTrustEvidence {
            log_index: to_u64(index, "log index")?,
            duplicate: true,
        });
    }
    let key = subject_key(w, &evidence.subject).await?;
    let sealed = seal_evidence(&key, &evidence)?;
    let reference = trust_evidence_reference(&evidence);
    let index = w.append_leaf(LeafKind::Evidence, &evidence.content_hash, Some(reference)).await?;
    let now = w.now();
    sqlx::query(INSERT_SEALED_EVIDENCE_SQL)
        .bind(to_i64(index, "log index")?)
        .bind(evidence.content_hash.as_slice())
        .bind(&evidence.kind)
        .bind(&evidence.issuer)
        .bind(&evidence.subject)
        .bind(evidence.created_ms)
        .bind(now)
        .bind(sealed)
        .execute(w.connection())
        .await?;
    Ok(RecordedTrustEvidence { log_index: index, duplicate: false })
}

/// The data key of `subject`, made on first use; refuses an erased subject.
async fn subject_key(w: &mut Write, subject: &str) -> Result<DataKey> {
    let erasure: Option<ErasureRow> =
        sqlx::query_as(ERASED_SUBJECT_SQL).bind(subject).fetch_optional(w.connection()).await?;
    if erasure.is_some() {
        return Err(erased(subject));
    }
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar(SUBJECT_KEY_SQL).bind(subject).fetch_optional(w.connection()).await?;
    if let Some(bytes) = stored {
        return stored_data_key(bytes);
    }
    let key = new_data_key()?;
    let now = w.now();
    sqlx::query(INSERT_SUBJECT_KEY_SQL)
        .bind(subject)
        .bind(&key.as_bytes()[..])
        .bind(now)
        .execute(w.connection())
        .await?;
    Ok(key)
}

/// Destroys `subject`'s key and the evidence about it, and records the erasure with its leaf.
pub(super) async fn erase_subject(w: &mut Write, subject: String) -> Result<SubjectErasure> {
    let earlier: Option<ErasureRow> =
        sqlx::query_as(ERASED_SUBJECT_SQL).bind(&subject).fetch_optional(w.connection()).await?;
    if let Some(row) = earlier {
        return erasure_record(row, true);
    }
    sqlx::query(CLEAR_EVIDENCE_REFERENCES_SQL).bind(&subject).execute(w.connection()).await?;
    let erased_rows = sqlx::query(DELETE_SUBJECT_EVIDENCE_SQL)
        .bind(&subject)
        .execute(w.connection())
        .await?
        .rows_affected();
    sqlx::query(DELETE_SUBJECT_KEY_SQL).bind(&subject).execute(w.connection()).await?;
    let now = w.now();
    let data_hash = erasure_data_hash(&subject, now, erased_rows);
    let index =
        w.append_leaf(LeafKind::Erasure, &data_hash, Some(erasure_reference(&subject))).await?;
    let row =
        (subject, now, to_i64(erased_rows, "erased evidence count")?, to_i64(index, "log index")?);
    sqlx::query(INSERT_ERASURE_SQL)
        .bind(&row.0)
        .bind(row.1)
        .bind(row.2)
        .bind(row.3)
        .execute(w.connection())
        .await?;
    erasure_record(row, false)
}

/// Seals the trust evidence stored before migration 0007, a few hundred rows per transaction
/// under the log's lock, when a node connects: after an upgrade no body stays in clear in the
/// live rows (dead tuples keep the old bytes until VACUUM reuses them). Nodes connecting at once
/// take turns on the lock, and each row is sealed once. Returns how many rows this node sealed.
pub(super) async fn seal_old_rows(pool: &sqlx::PgPool) -> Result<u64> {
    let mut sealed = 0;
    loop {
        let mut w = Write::begin(pool).await?;
        let rows: Vec<UnsealedRow> = sqlx::query_as(UNSEALED_EVIDENCE_SQL)
            .bind(RESEAL_ROWS_PER_TRANSACTION)
            .fetch_all(w.connection())
            .await?;
        if rows.is_empty() {
            return Ok(sealed);
        }
        for row in &rows {
            let key = subject_key(&mut w, &row.2).await?;
            sqlx::query(SEAL_EVIDENCE_ROW_SQL)
                .bind(reseal(&key, row)?)
                .bind(row.0)
                .execute(w.connection())
                .await?;
        }
        w.commit().await?;
        sealed += rows.len() as u64;
    }
}
