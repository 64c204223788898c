//! The read side, on the pool without a transaction (see the module documentation of
//! [`super`] for why that is consistent), and the tree-node reads the writes share.

use std::collections::{BTreeSet, HashMap};

use atp_core::tlog::{Hash, consistency_proof_ranges, inclusion_proof_ranges};
use atp_store::backend::subject_data::{
    TrustEvidenceRow, list_trust_evidence_sql, scan_after, scan_trust_evidence_sql,
    trust_evidence_page, trust_evidence_page_rows, trust_evidence_record,
};
use atp_store::backend::{
    self, NodeKey, ONCE_RECORD_LIVE_SQL, PURGE_ONCE_SQL, Plan, StoredList, check_tree_size,
    event_codec, evidence_page_before, identity_page_after, log_entry, page_limit,
    status_list_record, to_hash, to_i64, to_u64,
};
use atp_store::{
    IdentityPage, IdentityRecord, LogEntry, MAX_ENTRIES_PER_CALL, RoleBinding, RoleBindings,
    StatusListRecord, StoreError, StoreStats, StoredCheckpoint, StoredEvent, StoredTrustSnapshot,
    TrustEvidenceFilter, TrustEvidencePage, TrustEvidenceRecord,
};
use sqlx::{AssertSqlSafe, PgConnection, PgPool};

use super::Result;

/// A pool error as the store reports it: a closed pool is a closed store.
pub(super) fn pool_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolClosed => StoreError::Closed,
        e => StoreError::Database(e),
    }
}

/// Fetches stored tree nodes in one query; every requested node must exist.
pub(super) async fn fetch_nodes(
    conn: &mut PgConnection,
    keys: &BTreeSet<NodeKey>,
) -> Result<HashMap<NodeKey, Hash>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let mut levels = Vec::with_capacity(keys.len());
    let mut indices = Vec::with_capacity(keys.len());
    for (level, index) in keys {
        levels.push(i32::try_from(*level).map_err(|_| StoreError::corrupt("bad tree level"))?);
        indices.push(to_i64(*index, "node index")?);
    }
    let rows: Vec<(i32, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT n.tree_level, n.node_index, n.hash FROM tlog_nodes n \
         JOIN UNNEST($1::INTEGER[], $2::BIGINT[]) AS k(tree_level, node_index) \
         ON n.tree_level = k.tree_level AND n.node_index = k.node_index",
    )
    .bind(levels)
    .bind(indices)
    .fetch_all(&mut *conn)
    .await?;
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

/// The root of the first `size` leaves (`conn` must see at least `size` leaves).
pub(super) async fn root_on(conn: &mut PgConnection, size: u64) -> Result<Hash> {
    let plan = Plan::root(size);
    let nodes = fetch_nodes(conn, plan.keys()).await?;
    let hashes = plan.hashes(&nodes)?;
    hashes.first().copied().ok_or_else(|| StoreError::corrupt("empty root computation"))
}

async fn log_size_on(conn: &mut PgConnection) -> Result<u64> {
    let size: i64 = sqlx::query_scalar("SELECT size FROM tlog_head WHERE singleton = 1")
        .fetch_one(&mut *conn)
        .await?;
    to_u64(size, "log size")
}

async fn acquire(pool: &PgPool) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
    pool.acquire().await.map_err(pool_error)
}

pub(super) async fn log_size(pool: &PgPool) -> Result<u64> {
    log_size_on(&mut *acquire(pool).await?).await
}

pub(super) async fn root_at(pool: &PgPool, size: u64) -> Result<Hash> {
    let mut conn = acquire(pool).await?;
    check_tree_size(size, log_size_on(&mut conn).await?)?;
    root_on(&mut conn, size).await
}

async fn range_hashes(
    conn: &mut PgConnection,
    ranges: Vec<std::ops::Range<u64>>,
) -> Result<Vec<Hash>> {
    let plan = Plan::new(ranges)?;
    let nodes = fetch_nodes(conn, plan.keys()).await?;
    plan.hashes(&nodes)
}

pub(super) async fn inclusion_proof(pool: &PgPool, index: u64, size: u64) -> Result<Vec<Hash>> {
    let ranges = inclusion_proof_ranges(index, size)?;
    let mut conn = acquire(pool).await?;
    check_tree_size(size, log_size_on(&mut conn).await?)?;
    range_hashes(&mut conn, ranges).await
}

pub(super) async fn consistency_proof(
    pool: &PgPool,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>> {
    let ranges = consistency_proof_ranges(old_size, new_size)?;
    let mut conn = acquire(pool).await?;
    check_tree_size(new_size, log_size_on(&mut conn).await?)?;
    range_hashes(&mut conn, ranges).await
}

type EntryRow = (i64, String, Vec<u8>, Vec<u8>, Option<String>, i64);

pub(super) async fn get_entries(pool: &PgPool, start: u64, limit: u32) -> Result<Vec<LogEntry>> {
    let limit = limit.min(MAX_ENTRIES_PER_CALL);
    let Ok(start) = i64::try_from(start) else { return Ok(Vec::new()) };
    let rows: Vec<EntryRow> = sqlx::query_as(
        "SELECT l.leaf_index, l.kind, l.data_hash, n.hash, l.subject_ref, l.created_at_ms \
         FROM tlog_leaves l JOIN tlog_nodes n ON n.tree_level = 0 AND n.node_index = l.leaf_index \
         WHERE l.leaf_index >= $1 ORDER BY l.leaf_index LIMIT $2",
    )
    .bind(start)
    .bind(i64::from(limit))
    .fetch_all(&mut *acquire(pool).await?)
    .await?;
    rows.into_iter()
        .map(|(index, kind, data_hash, leaf_hash, reference, created_at_ms)| {
            log_entry(index, &kind, data_hash, leaf_hash, reference, created_at_ms)
        })
        .collect()
}

type EventRow = (i64, String, Vec<u8>, i64);

fn stored_event((sequence, digest, deflated, log_index): EventRow) -> Result<StoredEvent> {
    let canonical = event_codec::inflate(&deflated)?;
    backend::stored_event(sequence, digest, &canonical, log_index)
}

pub(super) async fn get_kel(pool: &PgPool, did: &str) -> Result<Vec<StoredEvent>> {
    let rows: Vec<EventRow> = sqlx::query_as(
        "SELECT seq, digest, event_deflate, log_index FROM kel_events WHERE did = $1 ORDER BY seq",
    )
    .bind(did)
    .fetch_all(&mut *acquire(pool).await?)
    .await?;
    rows.into_iter().map(stored_event).collect()
}

pub(super) async fn get_kel_event(
    pool: &PgPool,
    did: &str,
    sequence: u64,
) -> Result<Option<StoredEvent>> {
    let Ok(seq) = i64::try_from(sequence) else { return Ok(None) };
    let row: Option<EventRow> = sqlx::query_as(
        "SELECT seq, digest, event_deflate, log_index FROM kel_events WHERE did = $1 AND seq = $2",
    )
    .bind(did)
    .bind(seq)
    .fetch_optional(&mut *acquire(pool).await?)
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

pub(super) async fn get_identity(pool: &PgPool, did: &str) -> Result<Option<IdentityRecord>> {
    let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE did = $1");
    let row: Option<IdentityRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(did)
        .fetch_optional(&mut *acquire(pool).await?)
        .await?;
    row.map(identity).transpose()
}

pub(super) async fn list_identities(
    pool: &PgPool,
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
        .fetch_all(&mut *acquire(pool).await?)
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

pub(super) async fn identity_count(pool: &PgPool) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT counter_value FROM store_counters WHERE counter_name = 'identities'",
    )
    .fetch_one(&mut *acquire(pool).await?)
    .await?;
    to_u64(n, "identity count")
}

pub(super) async fn checkpoint(
    pool: &PgPool,
    size: Option<u64>,
) -> Result<Option<StoredCheckpoint>> {
    let mut conn = acquire(pool).await?;
    let row: Option<(i64, Vec<u8>, String, i64)> = match size {
        None => {
            sqlx::query_as(
                "SELECT tree_size, root_hash, note, created_at_ms FROM checkpoints \
                 ORDER BY tree_size DESC LIMIT 1",
            )
            .fetch_optional(&mut *conn)
            .await?
        }
        Some(size) => {
            let Ok(size) = i64::try_from(size) else { return Ok(None) };
            sqlx::query_as(
                "SELECT tree_size, root_hash, note, created_at_ms FROM checkpoints \
                 WHERE tree_size = $1",
            )
            .bind(size)
            .fetch_optional(&mut *conn)
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
    pool: &PgPool,
    list_id: &str,
) -> Result<Option<StatusListRecord>> {
    let row: Option<StatusRow> = sqlx::query_as(
        "SELECT list_id, issuer, purpose, status_size, entries, bitstring, list_version, \
         allocatable, next_index, created_at_ms, updated_at_ms FROM status_lists WHERE list_id = $1",
    )
    .bind(list_id)
    .fetch_optional(&mut *acquire(pool).await?)
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

pub(super) async fn list_trust_anchors(pool: &PgPool) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT did FROM trust_anchors ORDER BY did")
        .fetch_all(&mut *acquire(pool).await?)
        .await?)
}

pub(super) async fn find_leaf(pool: &PgPool, leaf_hash: &Hash) -> Result<Option<u64>> {
    let index: Option<i64> = sqlx::query_scalar(
        "SELECT node_index FROM tlog_nodes WHERE tree_level = 0 AND hash = $1 \
         ORDER BY node_index LIMIT 1",
    )
    .bind(leaf_hash.as_slice())
    .fetch_optional(&mut *acquire(pool).await?)
    .await?;
    index.map(|i| to_u64(i, "leaf index")).transpose()
}

pub(super) async fn evidence_subjects(
    pool: &PgPool,
    evidence_type: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<String>> {
    let limit = limit.min(MAX_ENTRIES_PER_CALL);
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT subject FROM evidence WHERE evidence_type = $1 AND subject > $2 \
         ORDER BY subject LIMIT $3",
    )
    .bind(evidence_type)
    .bind(after.unwrap_or(""))
    .bind(i64::from(limit))
    .fetch_all(&mut *acquire(pool).await?)
    .await?)
}

pub(super) async fn get_meta(pool: &PgPool, key: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT meta_value FROM node_meta WHERE meta_key = $1")
        .bind(key)
        .fetch_optional(&mut *acquire(pool).await?)
        .await?)
}

/// Row counts; `COUNT(*)` scans, so this is for diagnostics and tests, not hot paths.
pub(super) async fn stats(pool: &PgPool) -> Result<StoreStats> {
    let mut conn = acquire(pool).await?;
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
    pool: &PgPool,
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
    pool: &PgPool,
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

/// The bindings and their revision in one snapshot (a `REPEATABLE READ` read transaction).
pub(super) async fn list_role_bindings(pool: &PgPool) -> Result<RoleBindings> {
    let mut tx = pool.begin().await.map_err(pool_error)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let revision: i64 =
        sqlx::query_scalar("SELECT revision FROM role_bindings_revision WHERE singleton = 1")
            .fetch_one(&mut *tx)
            .await?;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT subject, role, domain FROM role_bindings ORDER BY subject, role, domain",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let bindings =
        rows.into_iter().map(|(subject, role, domain)| RoleBinding { subject, role, domain });
    Ok(RoleBindings {
        revision: to_u64(revision, "role bindings revision")?,
        bindings: bindings.collect(),
    })
}

pub(super) async fn role_bindings_revision(pool: &PgPool) -> Result<u64> {
    let r: i64 =
        sqlx::query_scalar("SELECT revision FROM role_bindings_revision WHERE singleton = 1")
            .fetch_one(&mut *acquire(pool).await?)
            .await?;
    to_u64(r, "role bindings revision")
}

/// One autocommit statement on the pool, without the log's head row lock: replay checks must
/// not queue behind the log's writers.
pub(super) async fn once_record_live(pool: &PgPool, digest: Hash, now_ms: i64) -> Result<bool> {
    let live: i64 = sqlx::query_scalar(ONCE_RECORD_LIVE_SQL)
        .bind(&digest[..])
        .bind(now_ms)
        .fetch_one(&mut *acquire(pool).await?)
        .await?;
    Ok(live > 0)
}

pub(super) async fn trust_snapshot_revision(pool: &PgPool) -> Result<Option<(u64, i64)>> {
    let row: Option<(i64, i64)> = sqlx::query_as(backend::TRUST_SNAPSHOT_REVISION_SQL)
        .fetch_optional(&mut *acquire(pool).await?)
        .await?;
    row.map(|(revision, at)| Ok((to_u64(revision, "trust snapshot revision")?, at))).transpose()
}

pub(super) async fn trust_snapshot(pool: &PgPool) -> Result<Option<StoredTrustSnapshot>> {
    let row = sqlx::query_as(backend::TRUST_SNAPSHOT_SQL)
        .fetch_optional(&mut *acquire(pool).await?)
        .await?;
    row.map(backend::trust_snapshot_record).transpose()
}

pub(super) async fn purge_once_records(pool: &PgPool, now_ms: i64, limit: u32) -> Result<u64> {
    let done = sqlx::query(PURGE_ONCE_SQL)
        .bind(now_ms)
        .bind(i64::from(limit.min(MAX_ENTRIES_PER_CALL)))
        .execute(&mut *acquire(pool).await?)
        .await?;
    Ok(done.rows_affected())
}
