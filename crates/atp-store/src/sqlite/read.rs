//! The read side: queries on the `query_only` pool, and the tree-node helpers the writer
//! shares.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use atp_core::tlog::{Hash, consistency_proof_ranges, inclusion_proof_ranges};
use sqlx::{AssertSqlSafe, SqliteConnection, SqlitePool};

use crate::backend::subject_data::{
    TrustEvidenceRow, list_trust_evidence_sql, scan_after, scan_trust_evidence_sql,
    trust_evidence_page, trust_evidence_page_rows, trust_evidence_record,
};
use crate::backend::{
    self, NodeKey, ONCE_RECORD_LIVE_SQL, Plan, StoredList, check_tree_size, evidence_page_before,
    identity_page_after, log_entry, page_limit, status_list_record, to_hash, to_i64, to_u64,
};
use crate::backend::{TRUST_SNAPSHOT_REVISION_SQL, TRUST_SNAPSHOT_SQL, trust_snapshot_record};
use crate::error::{Result, StoreError};
use crate::model::StoredTrustSnapshot;
use crate::model::{
    IdentityPage, IdentityRecord, LogEntry, MAX_ENTRIES_PER_CALL, StatusListRecord, StoreStats,
    StoredCheckpoint, StoredEvent,
};
use crate::model::{TrustEvidenceFilter, TrustEvidencePage, TrustEvidenceRecord};

/// Fetches stored tree nodes in one query; every requested node must exist.
pub(crate) async fn fetch_nodes(
    conn: &mut SqliteConnection,
    keys: &BTreeSet<NodeKey>,
) -> Result<HashMap<NodeKey, Hash>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    // Only placeholders are formatted into the text; the values are bound.
    let mut sql = String::from("SELECT tree_level, node_index, hash FROM tlog_nodes WHERE ");
    for i in 0..keys.len() {
        if i > 0 {
            sql.push_str(" OR ");
        }
        let _ = write!(sql, "(tree_level = ${} AND node_index = ${})", 2 * i + 1, 2 * i + 2);
    }
    let mut q = sqlx::query_as::<_, (i64, i64, Vec<u8>)>(AssertSqlSafe(sql));
    for (level, index) in keys {
        q = q.bind(i64::from(*level)).bind(to_i64(*index, "node index")?);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for (level, index, hash) in rows {
        let level = u32::try_from(level).map_err(|_| StoreError::corrupt("bad tree level"))?;
        out.insert((level, to_u64(index, "node index")?), to_hash(hash, "tree node")?);
    }
    if out.len() != keys.len() {
        return Err(StoreError::corrupt(format!(
            "{} of {} tree nodes missing",
            keys.len() - out.len(),
            keys.len()
        )));
    }
    Ok(out)
}

/// The number of leaves, as seen by `conn`.
pub(crate) async fn log_size_on(conn: &mut SqliteConnection) -> Result<u64> {
    let size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM tlog_leaves")
        .fetch_one(&mut *conn)
        .await?;
    to_u64(size, "log size")
}

/// The hashes of leaf ranges, from stored nodes.
async fn range_hashes(
    conn: &mut SqliteConnection,
    ranges: Vec<std::ops::Range<u64>>,
) -> Result<Vec<Hash>> {
    let plan = Plan::new(ranges)?;
    let nodes = fetch_nodes(conn, plan.keys()).await?;
    plan.hashes(&nodes)
}

/// The root of the first `size` leaves, as seen by `conn` (which must hold at least `size`).
pub(crate) async fn root_on(conn: &mut SqliteConnection, size: u64) -> Result<Hash> {
    let plan = Plan::root(size);
    let nodes = fetch_nodes(conn, plan.keys()).await?;
    let hashes = plan.hashes(&nodes)?;
    hashes.first().copied().ok_or_else(|| StoreError::corrupt("empty root computation"))
}

pub(super) async fn log_size(pool: &SqlitePool) -> Result<u64> {
    let mut conn = pool.acquire().await?;
    log_size_on(&mut conn).await
}

pub(super) async fn root_at(pool: &SqlitePool, size: u64) -> Result<Hash> {
    let mut conn = pool.acquire().await?;
    check_tree_size(size, log_size_on(&mut conn).await?)?;
    root_on(&mut conn, size).await
}

pub(super) async fn inclusion_proof(pool: &SqlitePool, index: u64, size: u64) -> Result<Vec<Hash>> {
    let ranges = inclusion_proof_ranges(index, size)?;
    let mut conn = pool.acquire().await?;
    check_tree_size(size, log_size_on(&mut conn).await?)?;
    range_hashes(&mut conn, ranges).await
}

pub(super) async fn consistency_proof(
    pool: &SqlitePool,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>> {
    let ranges = consistency_proof_ranges(old_size, new_size)?;
    let mut conn = pool.acquire().await?;
    check_tree_size(new_size, log_size_on(&mut conn).await?)?;
    range_hashes(&mut conn, ranges).await
}

type EntryRow = (i64, String, Vec<u8>, Vec<u8>, Option<String>, i64);

pub(super) async fn get_entries(
    pool: &SqlitePool,
    start: u64,
    limit: u32,
) -> Result<Vec<LogEntry>> {
    let limit = limit.min(MAX_ENTRIES_PER_CALL);
    let Ok(start) = i64::try_from(start) else { return Ok(Vec::new()) };
    let rows: Vec<EntryRow> = sqlx::query_as(
        "SELECT l.leaf_index, l.kind, l.data_hash, n.hash, l.subject_ref, l.created_at_ms \
         FROM tlog_leaves l JOIN tlog_nodes n ON n.tree_level = 0 AND n.node_index = l.leaf_index \
         WHERE l.leaf_index >= $1 ORDER BY l.leaf_index LIMIT $2",
    )
    .bind(start)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(index, kind, data_hash, leaf_hash, reference, created_at_ms)| {
            log_entry(index, &kind, data_hash, leaf_hash, reference, created_at_ms)
        })
        .collect()
}

type EventRow = (i64, String, String, Option<Vec<u8>>, i64);

/// Rows written before migration 0006 have the JSON and no compressed form.
fn stored_event((sequence, digest, json, deflated, log_index): EventRow) -> Result<StoredEvent> {
    match deflated {
        Some(d) => {
            let inflated = crate::backend::event_codec::inflate(&d)?;
            backend::stored_event(sequence, digest, &inflated, log_index)
        }
        None => backend::stored_event(sequence, digest, json.as_bytes(), log_index),
    }
}

pub(super) async fn get_kel(pool: &SqlitePool, did: &str) -> Result<Vec<StoredEvent>> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT seq, digest, event_json, event_deflate, log_index FROM kel_events WHERE did = $1 \
         ORDER BY seq",
    )
    .bind(did)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(stored_event).collect()
}

pub(super) async fn get_kel_event(
    pool: &SqlitePool,
    did: &str,
    sequence: u64,
) -> Result<Option<StoredEvent>> {
    let Ok(seq) = i64::try_from(sequence) else { return Ok(None) };
    let row: Option<EventRow> = sqlx::query_as(
        "SELECT seq, digest, event_json, event_deflate, log_index FROM kel_events \
         WHERE did = $1 AND seq = $2",
    )
    .bind(did)
    .bind(seq)
    .fetch_optional(pool)
    .await?;
    row.map(stored_event).transpose()
}

type IdentityRow = (String, i64, String, bool, String, String, i64, i64);

const IDENTITY_COLUMNS: &str =
    "did, seq, digest, deactivated, created, updated, created_at_ms, updated_at_ms";

fn identity(
    (did, seq, digest, deactivated, created, updated, c, u): IdentityRow,
) -> Result<IdentityRecord> {
    Ok(IdentityRecord {
        did,
        sequence: to_u64(seq, "sequence")?,
        digest,
        deactivated,
        created,
        updated,
        created_at_ms: c,
        updated_at_ms: u,
    })
}

pub(super) async fn get_identity(pool: &SqlitePool, did: &str) -> Result<Option<IdentityRecord>> {
    let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE did = $1");
    let row: Option<IdentityRow> =
        sqlx::query_as(AssertSqlSafe(sql)).bind(did).fetch_optional(pool).await?;
    row.map(identity).transpose()
}

pub(super) async fn list_identities(
    pool: &SqlitePool,
    page_size: u32,
    page_token: Option<&str>,
) -> Result<IdentityPage> {
    let size = page_limit(page_size);
    let after = identity_page_after(page_token)?;
    // One row more than the page tells whether there is a next page.
    let sql =
        format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE did > $1 ORDER BY did LIMIT $2");
    let rows: Vec<IdentityRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(after)
        .bind(i64::from(size) + 1)
        .fetch_all(pool)
        .await?;
    let mut identities = rows.into_iter().map(identity).collect::<Result<Vec<_>>>()?;
    let next_page_token = if identities.len() > size as usize {
        identities.truncate(size as usize);
        identities.last().map(|r| r.did.clone())
    } else {
        None
    };
    Ok(IdentityPage { identities, next_page_token })
}

pub(super) async fn identity_count(pool: &SqlitePool) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT counter_value FROM store_counters WHERE counter_name = 'identities'",
    )
    .fetch_one(pool)
    .await?;
    to_u64(n, "identity count")
}

pub(super) async fn checkpoint(
    pool: &SqlitePool,
    size: Option<u64>,
) -> Result<Option<StoredCheckpoint>> {
    let row: Option<(i64, Vec<u8>, String, i64)> = match size {
        None => {
            sqlx::query_as(
                "SELECT tree_size, root_hash, note, created_at_ms FROM checkpoints \
                 ORDER BY tree_size DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        }
        Some(size) => {
            let Ok(size) = i64::try_from(size) else { return Ok(None) };
            sqlx::query_as(
                "SELECT tree_size, root_hash, note, created_at_ms FROM checkpoints \
                 WHERE tree_size = $1",
            )
            .bind(size)
            .fetch_optional(pool)
            .await?
        }
    };
    row.map(|(size, root, note, created_at_ms)| {
        Ok(StoredCheckpoint {
            size: to_u64(size, "checkpoint size")?,
            root_hash: to_hash(root, "checkpoint root")?,
            note,
            created_at_ms,
        })
    })
    .transpose()
}

type StatusRow = (String, String, String, i64, i64, Vec<u8>, i64, bool, i64, i64, i64);

pub(super) async fn get_status_list(
    pool: &SqlitePool,
    list_id: &str,
) -> Result<Option<StatusListRecord>> {
    let row: Option<StatusRow> = sqlx::query_as(
        "SELECT list_id, issuer, purpose, status_size, entries, bitstring, list_version, \
         allocatable, next_index, created_at_ms, updated_at_ms FROM status_lists WHERE list_id = $1",
    )
    .bind(list_id)
    .fetch_optional(pool)
    .await?;
    let Some((
        list_id,
        issuer,
        purpose,
        status_size,
        entries,
        bits,
        version,
        allocatable,
        next,
        c,
        u,
    )) = row
    else {
        return Ok(None);
    };
    let stored = StoredList { issuer, purpose, status_size, entries, bits, version };
    status_list_record(list_id, stored, allocatable, next, c, u).map(Some)
}

pub(super) async fn list_trust_anchors(pool: &SqlitePool) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT did FROM trust_anchors ORDER BY did").fetch_all(pool).await?)
}

pub(super) async fn find_leaf(pool: &SqlitePool, leaf_hash: &Hash) -> Result<Option<u64>> {
    let index: Option<i64> = sqlx::query_scalar(
        "SELECT node_index FROM tlog_nodes WHERE tree_level = 0 AND hash = $1 \
         ORDER BY node_index LIMIT 1",
    )
    .bind(leaf_hash.as_slice())
    .fetch_optional(pool)
    .await?;
    index.map(|i| to_u64(i, "leaf index")).transpose()
}

pub(super) async fn evidence_subjects(
    pool: &SqlitePool,
    evidence_type: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<String>> {
    let limit = limit.min(crate::MAX_ENTRIES_PER_CALL);
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT subject FROM evidence WHERE evidence_type = $1 AND subject > $2 \
         ORDER BY subject LIMIT $3",
    )
    .bind(evidence_type)
    .bind(after.unwrap_or(""))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}

pub(super) async fn get_meta(pool: &SqlitePool, key: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT meta_value FROM node_meta WHERE meta_key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await?)
}

pub(super) async fn once_record_live(pool: &SqlitePool, digest: Hash, now_ms: i64) -> Result<bool> {
    let live: i64 = sqlx::query_scalar(ONCE_RECORD_LIVE_SQL)
        .bind(&digest[..])
        .bind(now_ms)
        .fetch_one(pool)
        .await?;
    Ok(live > 0)
}

pub(super) async fn trust_snapshot_revision(pool: &SqlitePool) -> Result<Option<(u64, i64)>> {
    let row: Option<(i64, i64)> =
        sqlx::query_as(TRUST_SNAPSHOT_REVISION_SQL).fetch_optional(pool).await?;
    row.map(|(revision, at)| Ok((to_u64(revision, "trust snapshot revision")?, at))).transpose()
}

pub(super) async fn trust_snapshot(pool: &SqlitePool) -> Result<Option<StoredTrustSnapshot>> {
    let row = sqlx::query_as(TRUST_SNAPSHOT_SQL).fetch_optional(pool).await?;
    row.map(trust_snapshot_record).transpose()
}

/// Row counts; `COUNT(*)` scans, so this is for diagnostics and tests, not hot paths.
pub(super) async fn stats(pool: &SqlitePool) -> Result<StoreStats> {
    let mut conn = pool.acquire().await?;
    let mut count = async |table: &'static str| -> Result<u64> {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&mut *conn).await?;
        to_u64(n, "row count")
    };
    Ok(StoreStats {
        identities: count("identities").await?,
        deactivated_identities: count("identities WHERE deactivated").await?,
        kel_events: count("kel_events").await?,
        log_size: count("tlog_leaves").await?,
        tree_nodes: count("tlog_nodes").await?,
        checkpoints: count("checkpoints").await?,
        status_lists: count("status_lists").await?,
        trust_anchors: count("trust_anchors").await?,
        evidence: count("evidence").await?,
        trust_evidence: count("trust_evidence").await?,
        meta_keys: count("node_meta").await?,
    })
}

/// Newest first; the page token is the log index of the last item returned.
pub(super) async fn list_trust_evidence(
    pool: &SqlitePool,
    filter: &TrustEvidenceFilter,
    page_size: u32,
    page_token: Option<&str>,
) -> Result<TrustEvidencePage> {
    let before = evidence_page_before(page_token)?;
    let (sql, binds) = list_trust_evidence_sql(filter);
    let mut q = sqlx::query_as::<_, TrustEvidenceRow>(AssertSqlSafe(sql)).bind(before);
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.bind(trust_evidence_page_rows(page_size)).fetch_all(pool).await?;
    trust_evidence_page(rows, page_size)
}

/// In log order, after `after` (exclusive).
pub(super) async fn scan_trust_evidence(
    pool: &SqlitePool,
    after: Option<u64>,
    limit: u32,
) -> Result<Vec<TrustEvidenceRecord>> {
    let limit = limit.clamp(1, MAX_ENTRIES_PER_CALL);
    let rows: Vec<TrustEvidenceRow> = sqlx::query_as(AssertSqlSafe(scan_trust_evidence_sql()))
        .bind(scan_after(after)?)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(trust_evidence_record).collect()
}
