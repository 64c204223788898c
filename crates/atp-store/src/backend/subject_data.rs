//! Personal data under per-subject keys, shared by every backend (docs/audit.md, "Erasure"):
//! trust evidence about a subject is stored sealed under the subject's data key
//! ([`atp_crypto::sealing`]); erasing the subject destroys the key and the rows, and records the
//! erasure with an `erasure` log leaf ([`atp_core::erasure`]).
//!
//! The SQL is portable; each backend runs it inside its own write transaction, which is the
//! only writer of the log (SQLite's writer task, PostgreSQL's lock on the log head), so a check
//! and the write that depends on it cannot interleave with an erasure.

use std::fmt::Write as _;

use atp_core::erasure::sealed_evidence_record;
pub use atp_crypto::sealing::DataKey;

use super::{page_limit, to_hash, to_i64, to_u64};
use crate::error::{Result, StoreError};
use crate::model::{
    NewTrustEvidence, SubjectErasure, TrustEvidenceFilter, TrustEvidencePage, TrustEvidenceRecord,
};

/// The erasure of `$1`, if it was erased.
pub const ERASED_SUBJECT_SQL: &str = "SELECT subject, erased_at_ms, evidence_erased, log_index \
     FROM erased_subjects WHERE subject = $1";
/// The data key of `$1`.
pub const SUBJECT_KEY_SQL: &str = "SELECT data_key FROM subject_keys WHERE subject = $1";
/// Stores a new data key (`$1` subject, `$2` key, `$3` time).
pub const INSERT_SUBJECT_KEY_SQL: &str =
    "INSERT INTO subject_keys (subject, data_key, created_at_ms) VALUES ($1, $2, $3)";
/// Stores sealed trust evidence: `$1` log index, `$2` content hash, `$3` kind, `$4` issuer,
/// `$5` subject, `$6` created, `$7` stored at, `$8` the sealed body.
pub const INSERT_SEALED_EVIDENCE_SQL: &str = "INSERT INTO trust_evidence (log_index, content_hash, \
     kind, issuer, subject, created_ms, evidence_json, stored_at_ms, sealed_body) \
     VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8)";
/// Forgets where the `evidence` leaves of `$1`'s evidence point (the leaves themselves stay).
pub const CLEAR_EVIDENCE_REFERENCES_SQL: &str = "UPDATE tlog_leaves SET subject_ref = NULL \
     WHERE leaf_index IN (SELECT log_index FROM trust_evidence WHERE subject = $1)";
/// Deletes the trust evidence about `$1`.
pub const DELETE_SUBJECT_EVIDENCE_SQL: &str = "DELETE FROM trust_evidence WHERE subject = $1";
/// Deletes the data key of `$1`.
pub const DELETE_SUBJECT_KEY_SQL: &str = "DELETE FROM subject_keys WHERE subject = $1";
/// Records an erasure: `$1` subject, `$2` time, `$3` evidence count, `$4` log index.
pub const INSERT_ERASURE_SQL: &str = "INSERT INTO erased_subjects (subject, erased_at_ms, \
     evidence_erased, log_index) VALUES ($1, $2, $3, $4)";

/// Rows stored before sealing existed (`$1` at most), in log order: log index, content hash,
/// subject, plaintext body.
pub const UNSEALED_EVIDENCE_SQL: &str = "SELECT log_index, content_hash, subject, evidence_json \
     FROM trust_evidence WHERE sealed_body IS NULL ORDER BY log_index LIMIT $1";
/// Replaces a row's plaintext body with the sealed one (`$1` sealed, `$2` log index).
pub const SEAL_EVIDENCE_ROW_SQL: &str =
    "UPDATE trust_evidence SET evidence_json = '', sealed_body = $1 WHERE log_index = $2";
/// Rows re-sealed per transaction when a store opens.
pub const RESEAL_ROWS_PER_TRANSACTION: i64 = 500;
/// A row of [`UNSEALED_EVIDENCE_SQL`].
pub type UnsealedRow = (i64, Vec<u8>, String, String);

/// The sealed form of a row stored before sealing existed.
pub fn reseal(key: &DataKey, row: &UnsealedRow) -> Result<Vec<u8>> {
    let content_hash = to_hash(row.1.clone(), "content hash")?;
    key.seal(&sealed_evidence_record(&content_hash), row.3.as_bytes())
        .map_err(|e| StoreError::WriteFailed(format!("sealing evidence {}: {e}", row.0)))
}

/// A row of [`ERASED_SUBJECT_SQL`].
pub type ErasureRow = (String, i64, i64, i64);

/// Refuses a subject that is not a DID.
pub fn check_erasure_subject(subject: &str) -> Result<()> {
    atp_core::did::validate_did(subject)?;
    Ok(())
}

/// The answer for a stored erasure.
pub fn erasure_record(row: ErasureRow, already_erased: bool) -> Result<SubjectErasure> {
    let (subject, erased_at_ms, evidence_erased, log_index) = row;
    Ok(SubjectErasure {
        subject,
        erased_at_ms,
        evidence_erased: to_u64(evidence_erased, "erased evidence count")?,
        log_index: to_u64(log_index, "log index")?,
        already_erased,
    })
}

/// The refusal to store anything more about an erased subject.
pub fn erased(subject: &str) -> StoreError {
    StoreError::SubjectErased { subject: subject.to_owned() }
}

/// A fresh data key for a subject seen for the first time.
pub fn new_data_key() -> Result<DataKey> {
    DataKey::generate().map_err(|e| StoreError::WriteFailed(format!("data key: {e}")))
}

/// A data key as stored.
pub fn stored_data_key(bytes: Vec<u8>) -> Result<DataKey> {
    DataKey::from_vec(bytes).map_err(|e| StoreError::corrupt(format!("stored data key: {e}")))
}

/// The body of `evidence`, sealed under its subject's key and bound to its content hash.
pub fn seal_evidence(key: &DataKey, evidence: &NewTrustEvidence) -> Result<Vec<u8>> {
    key.seal(&sealed_evidence_record(&evidence.content_hash), evidence.evidence_json.as_bytes())
        .map_err(|e| StoreError::WriteFailed(format!("sealing evidence: {e}")))
}

/// Reads trust evidence with its subject's data key.
const TRUST_EVIDENCE_SELECT: &str = "SELECT e.log_index, e.content_hash, e.kind, e.issuer, \
     e.subject, e.created_ms, e.evidence_json, e.stored_at_ms, e.sealed_body, k.data_key \
     FROM trust_evidence e LEFT JOIN subject_keys k ON k.subject = e.subject";

/// A row of the trust-evidence reads.
pub type TrustEvidenceRow =
    (i64, Vec<u8>, String, String, String, i64, String, i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// A stored row, its body opened with its subject's key. Rows stored before sealing existed
/// carry their body in `evidence_json`.
pub fn trust_evidence_record(row: TrustEvidenceRow) -> Result<TrustEvidenceRecord> {
    let (log_index, hash, kind, issuer, subject, created_ms, json, stored_at_ms, sealed, key) = row;
    let content_hash = to_hash(hash, "content hash")?;
    let evidence_json = match (sealed, key) {
        (None, key) => {
            // Stored before sealing existed; the key read with it is zeroized unused.
            drop(key.map(stored_data_key));
            json
        }
        (Some(sealed), Some(key)) => {
            let key = stored_data_key(key)?;
            let body = key
                .open(&sealed_evidence_record(&content_hash), &sealed)
                .map_err(|e| StoreError::corrupt(format!("evidence {log_index}: {e}")))?;
            String::from_utf8(body.to_vec())
                .map_err(|_| StoreError::corrupt(format!("evidence {log_index}: not UTF-8")))?
        }
        (Some(_), None) => {
            return Err(StoreError::corrupt(format!(
                "evidence {log_index} is sealed and its subject has no key"
            )));
        }
    };
    Ok(TrustEvidenceRecord {
        log_index: to_u64(log_index, "log index")?,
        content_hash,
        kind,
        issuer,
        subject,
        created_ms,
        evidence_json,
        stored_at_ms,
    })
}

/// The text and the filter values (bound from `$2` on) of a page of
/// [`crate::Store::list_trust_evidence`]: `$1` is the keyset bound and the last parameter the
/// row limit. Only placeholders are formatted into the text.
pub fn list_trust_evidence_sql(filter: &TrustEvidenceFilter) -> (String, Vec<&str>) {
    let mut sql = format!("{TRUST_EVIDENCE_SELECT} WHERE e.log_index < $1");
    let mut binds: Vec<&str> = Vec::new();
    for (column, value) in
        [("e.subject", &filter.subject), ("e.issuer", &filter.issuer), ("e.kind", &filter.kind)]
    {
        if let Some(v) = value {
            binds.push(v);
            let _ = write!(sql, " AND {column} = ${}", binds.len() + 1);
        }
    }
    let _ = write!(sql, " ORDER BY e.log_index DESC LIMIT ${}", binds.len() + 2);
    (sql, binds)
}

/// The row limit of a page: one more than the page, to tell whether there is a next one.
pub fn trust_evidence_page_rows(page_size: u32) -> i64 {
    i64::from(page_limit(page_size)) + 1
}

/// The page from the rows of [`list_trust_evidence_sql`].
pub fn trust_evidence_page(
    rows: Vec<TrustEvidenceRow>,
    page_size: u32,
) -> Result<TrustEvidencePage> {
    let size = page_limit(page_size) as usize;
    let mut evidence = rows.into_iter().map(trust_evidence_record).collect::<Result<Vec<_>>>()?;
    let next_page_token = if evidence.len() > size {
        evidence.truncate(size);
        evidence.last().map(|r| r.log_index.to_string())
    } else {
        None
    };
    Ok(TrustEvidencePage { evidence, next_page_token })
}

/// [`crate::Store::scan_trust_evidence`]: `$1` after this log index, `$2` at most.
pub fn scan_trust_evidence_sql() -> String {
    format!("{TRUST_EVIDENCE_SELECT} WHERE e.log_index > $1 ORDER BY e.log_index LIMIT $2")
}

/// The first bound of a scan.
pub fn scan_after(after: Option<u64>) -> Result<i64> {
    match after {
        Some(a) => to_i64(a, "log index"),
        None => Ok(-1),
    }
}

/// What the `erasure` leaf of `subject` points to.
pub fn erasure_reference(subject: &str) -> String {
    format!("erasure/{subject}")
}
