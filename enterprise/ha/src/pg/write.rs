//! The write transactions: each holds the log's head row lock from its first statement to its
//! commit, except the trust snapshot's, which locks only its lease's row.

use atp_core::log_entry::{LeafKind, entry_leaf_hash, status_update_data_hash};
use atp_core::status_list::StatusPurpose;
use atp_core::tlog::Hash;
use atp_store::backend::{
    BindingWrite, Frontier, KelAppend, LeaseRow, PUT_TRUST_SNAPSHOT_SQL, StoredList,
    apply_status_update_rule, check_checkpoint_fits, check_fence, check_policy_size,
    lease_decision, now_ms, peak_keys, set_status_rule, status_reference, status_update_reference,
    to_i64, to_u64,
};
use atp_store::{
    AppendedEvent, AppliedStatusUpdate, KelHead, Lease, NewEvidence, NewSignedStatusUpdate,
    NewStatusList, RoleBinding, RoleBindingChange, StatusSlot, StatusUpdate, StoreError,
};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::Result;
use super::read::{fetch_nodes, pool_error, root_on};

/// An open write transaction holding the log's head row lock, with the log's frontier as of
/// the lock.
pub(super) struct Write {
    tx: Transaction<'static, Postgres>,
    frontier: Frontier,
    start_size: u64,
    now: i64,
}

impl Write {
    /// Begins a transaction and takes the head row lock; waits while another writer holds it.
    pub(super) async fn begin(pool: &PgPool) -> Result<Self> {
        // Pinned: a REPEATABLE READ default would fail every write that waited on the lock.
        let mut tx =
            pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await.map_err(pool_error)?;
        let size: i64 =
            sqlx::query_scalar("SELECT size FROM tlog_head WHERE singleton = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        let size = to_u64(size, "log size")?;
        let keys = peak_keys(size);
        let nodes = fetch_nodes(&mut tx, &keys.iter().copied().collect()).await?;
        let peaks = keys
            .iter()
            .map(|k| nodes.get(k).copied().ok_or_else(|| StoreError::corrupt("missing log peak")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { tx, frontier: Frontier::new(size, peaks)?, start_size: size, now: now_ms() })
    }

    fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Moves the head to the leaves appended and commits. Dropping a `Write` without committing
    /// rolls it back.
    pub(super) async fn commit(mut self) -> Result<()> {
        if self.frontier.size() != self.start_size {
            sqlx::query("UPDATE tlog_head SET size = $1 WHERE singleton = 1")
                .bind(to_i64(self.frontier.size(), "log size")?)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await.map_err(|e| StoreError::WriteFailed(format!("commit: {e}")))
    }

    /// Appends a leaf and the tree nodes it completes (one statement each); returns its index.
    pub(super) async fn append_leaf(
        &mut self,
        kind: LeafKind,
        data_hash: &Hash,
        reference: Option<String>,
    ) -> Result<u64> {
        let leaf = entry_leaf_hash(kind, data_hash);
        let (index, nodes) = self.frontier.append(leaf);
        let now = self.now;
        sqlx::query(
            "INSERT INTO tlog_leaves (leaf_index, kind, data_hash, subject_ref, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(to_i64(index, "leaf index")?)
        .bind(kind.as_str())
        .bind(&data_hash[..])
        .bind(reference)
        .bind(now)
        .execute(self.conn())
        .await?;
        let mut levels = Vec::with_capacity(nodes.len());
        let mut indices = Vec::with_capacity(nodes.len());
        let mut hashes = Vec::with_capacity(nodes.len());
        for ((level, node_index), hash) in nodes {
            levels.push(i32::try_from(level).map_err(|_| StoreError::corrupt("tree level"))?);
            indices.push(to_i64(node_index, "node index")?);
            hashes.push(hash.to_vec());
        }
        sqlx::query(
            "INSERT INTO tlog_nodes (tree_level, node_index, hash) \
             SELECT * FROM UNNEST($1::INTEGER[], $2::BIGINT[], $3::BYTEA[])",
        )
        .bind(levels)
        .bind(indices)
        .bind(hashes)
        .execute(self.conn())
        .await?;
        Ok(index)
    }
}

/// Leaves and tree nodes staged by a batch, written in two statements.
#[derive(Default)]
pub(super) struct StagedLeaves {
    index: Vec<i64>,
    kind: Vec<&'static str>,
    data_hash: Vec<Vec<u8>>,
    reference: Vec<Option<String>>,
    level: Vec<i32>,
    node_index: Vec<i64>,
    hash: Vec<Vec<u8>>,
}

impl Write {
    /// The time this write stamps on its rows (node clock, ms).
    pub(super) fn now(&self) -> i64 {
        self.now
    }

    /// The open transaction's connection.
    pub(super) fn connection(&mut self) -> &mut PgConnection {
        self.conn()
    }

    /// Appends a leaf to the frontier and stages its rows; returns its index.
    pub(super) fn stage_leaf(
        &mut self,
        staged: &mut StagedLeaves,
        kind: LeafKind,
        data_hash: &Hash,
        reference: Option<String>,
    ) -> Result<u64> {
        let leaf = entry_leaf_hash(kind, data_hash);
        let (index, nodes) = self.frontier.append(leaf);
        staged.index.push(to_i64(index, "leaf index")?);
        staged.kind.push(kind.as_str());
        staged.data_hash.push(data_hash.to_vec());
        staged.reference.push(reference);
        for ((level, node_index), hash) in nodes {
            staged.level.push(i32::try_from(level).map_err(|_| StoreError::corrupt("tree level"))?);
            staged.node_index.push(to_i64(node_index, "node index")?);
            staged.hash.push(hash.to_vec());
        }
        Ok(index)
    }

    /// Writes the staged leaves and nodes, two statements whatever their number.
    pub(super) async fn write_staged(&mut self, staged: StagedLeaves) -> Result<()> {
        let now = self.now;
        sqlx::query(
            "INSERT INTO tlog_leaves (leaf_index, kind, data_hash, subject_ref, created_at_ms) \
             SELECT i, k, d, r, $5 FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BYTEA[], $4::TEXT[]) \
             AS t(i, k, d, r)",
        )
        .bind(staged.index)
        .bind(staged.kind)
        .bind(staged.data_hash)
        .bind(staged.reference)
        .bind(now)
        .execute(self.conn())
        .await?;
        sqlx::query(
            "INSERT INTO tlog_nodes (tree_level, node_index, hash) \
             SELECT * FROM UNNEST($1::INTEGER[], $2::BIGINT[], $3::BYTEA[])",
        )
        .bind(staged.level)
        .bind(staged.node_index)
        .bind(staged.hash)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

pub(super) async fn append_kel(w: &mut Write, req: KelAppend) -> Result<AppendedEvent> {
    let row: Option<(i64, String, bool)> =
        sqlx::query_as("SELECT seq, digest, deactivated FROM identities WHERE did = $1")
            .bind(&req.did)
            .fetch_optional(w.conn())
            .await?;
    let found = row
        .map(|(seq, digest, deactivated)| {
            Ok::<_, StoreError>((
                KelHead { sequence: to_u64(seq, "sequence")?, digest },
                deactivated,
            ))
        })
        .transpose()?;
    req.check_head(found.as_ref().map(|(head, deactivated)| (head, *deactivated)))?;
    let seq = to_i64(req.sequence, "sequence")?;
    let log_index = w.append_leaf(LeafKind::Kel, &req.data_hash, Some(req.reference())).await?;
    let now = w.now;
    match &req.expected {
        None => {
            sqlx::query(
                "INSERT INTO identities (did, seq, digest, deactivated, created, updated, \
                 created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $5, $6, $6)",
            )
            .bind(&req.did)
            .bind(seq)
            .bind(&req.digest)
            .bind(req.deactivated)
            .bind(&req.ts)
            .bind(now)
            .execute(w.conn())
            .await
            .map_err(|e| req.conflict_on_unique(e))?;
            sqlx::query(
                "UPDATE store_counters SET counter_value = counter_value + 1 \
                 WHERE counter_name = 'identities'",
            )
            .execute(w.conn())
            .await?;
        }
        Some(head) => {
            let done = sqlx::query(
                "UPDATE identities SET seq = $1, digest = $2, deactivated = $3, updated = $4, \
                 updated_at_ms = $5 WHERE did = $6 AND seq = $7 AND digest = $8",
            )
            .bind(seq)
            .bind(&req.digest)
            .bind(req.deactivated)
            .bind(&req.ts)
            .bind(now)
            .bind(&req.did)
            .bind(to_i64(head.sequence, "sequence")?)
            .bind(&head.digest)
            .execute(w.conn())
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::corrupt("identity row changed inside the write lock"));
            }
        }
    }
    sqlx::query(
        "INSERT INTO kel_events (did, seq, event_type, digest, event_deflate, log_index, \
         stored_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&req.did)
    .bind(seq)
    .bind(req.event_type)
    .bind(&req.digest)
    .bind(&req.deflated)
    .bind(to_i64(log_index, "log index")?)
    .bind(now)
    .execute(w.conn())
    .await
    .map_err(|e| req.conflict_on_unique(e))?;
    Ok(AppendedEvent { did: req.did, sequence: req.sequence, digest: req.digest, log_index })
}

pub(super) async fn put_checkpoint(
    w: &mut Write,
    note: String,
    size: u64,
    root: Hash,
) -> Result<bool> {
    let log_size = w.frontier.size();
    let log_root = root_on(w.conn(), size.min(log_size)).await?;
    check_checkpoint_fits(size, log_size, &log_root, &root)?;
    let now = w.now;
    let done = sqlx::query(
        "INSERT INTO checkpoints (tree_size, root_hash, note, created_at_ms) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING",
    )
    .bind(to_i64(size, "checkpoint size")?)
    .bind(&root[..])
    .bind(note)
    .bind(now)
    .execute(w.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn create_status_list(
    w: &mut Write,
    list: NewStatusList,
    bits: Vec<u8>,
) -> Result<()> {
    let now = w.now;
    sqlx::query(
        "INSERT INTO status_lists (list_id, issuer, purpose, status_size, entries, bitstring, \
         list_version, allocatable, next_index, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, 0, $8, $8)",
    )
    .bind(&list.list_id)
    .bind(&list.issuer)
    .bind(list.purpose.as_str())
    .bind(i64::from(list.status_size))
    .bind(to_i64(list.entries, "entries")?)
    .bind(bits)
    .bind(list.allocatable)
    .bind(now)
    .execute(w.conn())
    .await
    .map_err(|e| {
        if StoreError::is_unique_violation(&e) {
            StoreError::AlreadyExists { what: "status list", id: list.list_id.clone() }
        } else {
            StoreError::Database(e)
        }
    })?;
    Ok(())
}

/// The list as a write reads it, or [`StoreError::NotFound`].
async fn stored_list(w: &mut Write, list_id: &str) -> Result<StoredList> {
    let row: Option<(String, String, i64, i64, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT issuer, purpose, status_size, entries, bitstring, list_version \
         FROM status_lists WHERE list_id = $1",
    )
    .bind(list_id)
    .fetch_optional(w.conn())
    .await?;
    let Some((issuer, purpose, status_size, entries, bits, version)) = row else {
        return Err(StoreError::NotFound { what: "status list", id: list_id.to_owned() });
    };
    Ok(StoredList { issuer, purpose, status_size, entries, bits, version })
}

async fn store_bits(w: &mut Write, list_id: &str, bits: Vec<u8>, version: u64) -> Result<()> {
    let now = w.now;
    sqlx::query(
        "UPDATE status_lists SET bitstring = $1, list_version = $2, updated_at_ms = $3 \
         WHERE list_id = $4",
    )
    .bind(bits)
    .bind(to_i64(version, "list version")?)
    .bind(now)
    .bind(list_id)
    .execute(w.conn())
    .await?;
    Ok(())
}

pub(super) async fn set_status(
    w: &mut Write,
    list_id: &str,
    index: u64,
    value: u8,
) -> Result<StatusUpdate> {
    let stored = stored_list(w, list_id).await?;
    let outcome = set_status_rule(list_id, stored, index, value)?;
    let previous = outcome.previous;
    let Some((bits, new_version, data_hash)) = outcome.change else {
        return Ok(StatusUpdate { version: outcome.version, previous, log_index: None });
    };
    store_bits(w, list_id, bits, new_version).await?;
    let reference = status_reference(list_id, index);
    let log_index = w.append_leaf(LeafKind::Status, &data_hash, Some(reference)).await?;
    Ok(StatusUpdate { version: new_version, previous, log_index: Some(log_index) })
}

pub(super) async fn apply_status_update(
    w: &mut Write,
    update: NewSignedStatusUpdate,
) -> Result<AppliedStatusUpdate> {
    let stored = stored_list(w, &update.list_id).await?;
    let (bits, changed) = apply_status_update_rule(&update, stored)?;
    store_bits(w, &update.list_id, bits, update.update_seq).await?;
    let data_hash = status_update_data_hash(&update.update, &update.signature)?;
    let reference = status_update_reference(&update);
    let log_index = w.append_leaf(LeafKind::StatusUpdate, &data_hash, Some(reference)).await?;
    let now = w.now;
    sqlx::query(
        "INSERT INTO status_updates \
         (log_index, list_id, update_seq, update_bytes, signature, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(to_i64(log_index, "log index")?)
    .bind(&update.list_id)
    .bind(to_i64(update.update_seq, "update_seq")?)
    .bind(&update.update)
    .bind(&update.signature)
    .bind(now)
    .execute(w.conn())
    .await?;
    Ok(AppliedStatusUpdate { version: update.update_seq, changed, log_index })
}

pub(super) async fn allocate(
    w: &mut Write,
    issuer: &str,
    purpose: StatusPurpose,
) -> Result<Option<StatusSlot>> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT list_id, next_index FROM status_lists \
         WHERE issuer = $1 AND purpose = $2 AND allocatable AND next_index < entries \
         ORDER BY created_at_ms, list_id LIMIT 1",
    )
    .bind(issuer)
    .bind(purpose.as_str())
    .fetch_optional(w.conn())
    .await?;
    let Some((list_id, next)) = row else { return Ok(None) };
    sqlx::query("UPDATE status_lists SET next_index = next_index + 1 WHERE list_id = $1")
        .bind(&list_id)
        .execute(w.conn())
        .await?;
    Ok(Some(StatusSlot { list_id, index: to_u64(next, "next index")? }))
}

pub(super) async fn set_anchors(
    w: &mut Write,
    anchors: Vec<String>,
    data_hash: Hash,
    meta: Option<(String, String)>,
) -> Result<u64> {
    sqlx::query("DELETE FROM trust_anchors").execute(w.conn()).await?;
    if let Some((key, value)) = meta {
        set_meta(w, &key, &value).await?;
    }
    let now = w.now;
    sqlx::query("INSERT INTO trust_anchors (did, added_at_ms) SELECT did, $2 FROM UNNEST($1::TEXT[]) AS a(did)")
        .bind(&anchors)
        .bind(now)
        .execute(w.conn())
        .await?;
    w.append_leaf(LeafKind::Anchors, &data_hash, Some("trust-anchors".into())).await
}

pub(super) async fn append_evidence(
    w: &mut Write,
    evidence: NewEvidence,
    data_hash: Hash,
) -> Result<u64> {
    let index =
        w.append_leaf(LeafKind::Evidence, &data_hash, Some(evidence.subject.clone())).await?;
    let now = w.now;
    sqlx::query(
        "INSERT INTO evidence (log_index, subject, evidence_type, body, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(to_i64(index, "log index")?)
    .bind(&evidence.subject)
    .bind(&evidence.evidence_type)
    .bind(&evidence.body)
    .bind(now)
    .execute(w.conn())
    .await?;
    Ok(index)
}

pub(super) async fn set_meta(w: &mut Write, key: &str, value: &str) -> Result<()> {
    let now = w.now;
    sqlx::query(
        "INSERT INTO node_meta (meta_key, meta_value, updated_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (meta_key) DO UPDATE SET meta_value = excluded.meta_value, \
         updated_at_ms = excluded.updated_at_ms",
    )
    .bind(key)
    .bind(value)
    .bind(now)
    .execute(w.conn())
    .await?;
    Ok(())
}

/// The rows, the revision and the `role-bindings` log leaf (the whole policy after the change)
/// change together.
pub(super) async fn role_bindings(
    w: &mut Write,
    kind: BindingWrite,
    bindings: Vec<RoleBinding>,
) -> Result<Option<RoleBindingChange>> {
    let revision: i64 =
        sqlx::query_scalar("SELECT revision FROM role_bindings_revision WHERE singleton = 1")
            .fetch_one(w.conn())
            .await?;
    let revision = to_u64(revision, "role bindings revision")?;
    if kind == BindingWrite::Seed && revision != 0 {
        return Ok(None);
    }
    let now = w.now;
    let mut changed: u64 = 0;
    for b in &bindings {
        let q = match kind {
            BindingWrite::Add | BindingWrite::Seed => sqlx::query(
                "INSERT INTO role_bindings (subject, role, domain, added_at_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (subject, role, domain) DO NOTHING",
            )
            .bind(&b.subject)
            .bind(&b.role)
            .bind(&b.domain)
            .bind(now),
            BindingWrite::Remove => sqlx::query(
                "DELETE FROM role_bindings WHERE subject = $1 AND role = $2 AND domain = $3",
            )
            .bind(&b.subject)
            .bind(&b.role)
            .bind(&b.domain),
        };
        changed += q.execute(w.conn()).await?.rows_affected();
    }
    if changed == 0 {
        return Ok(Some(RoleBindingChange { changed, revision }));
    }
    if kind != BindingWrite::Remove {
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM role_bindings").fetch_one(w.conn()).await?;
        // On refusal the transaction is dropped and rolled back: nothing of this write stays.
        check_policy_size(to_u64(total, "role binding count")?)?;
    }
    let next = revision + 1;
    sqlx::query("UPDATE role_bindings_revision SET revision = $1 WHERE singleton = 1")
        .bind(to_i64(next, "role bindings revision")?)
        .execute(w.conn())
        .await?;
    let policy: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT subject, role, domain FROM role_bindings ORDER BY subject, role, domain",
    )
    .fetch_all(w.conn())
    .await?;
    let data_hash = atp_core::log_entry::role_bindings_data_hash(next, &policy)?;
    w.append_leaf(LeafKind::RoleBindings, &data_hash, Some("role-bindings".into())).await?;
    Ok(Some(RoleBindingChange { changed, revision: next }))
}

/// The database's clock in Unix milliseconds: leases are timed by it, never by a node's.
async fn db_now_ms(conn: &mut PgConnection) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT")
        .fetch_one(conn)
        .await?)
}

async fn lease_row(conn: &mut PgConnection, name: &str) -> Result<Option<LeaseRow>> {
    Ok(sqlx::query_as("SELECT holder, epoch, valid_until_ms FROM leases WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await?)
}

/// The fence of a write: `lease` is still the stored, unexpired lease.
pub(super) async fn check_lease(w: &mut Write, lease: &Lease) -> Result<()> {
    let row = lease_row(w.conn(), &lease.name).await?;
    let now = db_now_ms(w.conn()).await?;
    check_fence(lease, row, now)
}

/// Stores the trust snapshot fenced by `lease`, in a transaction of its own that locks the
/// lease's row (`FOR UPDATE`) rather than the log's head row: a take-over of the lease waits
/// for this write or is seen by it, and appends never wait behind a snapshot of many
/// megabytes.
pub(super) async fn put_trust_snapshot(
    pool: &PgPool,
    computed_at_ms: i64,
    body: Vec<u8>,
    lease: &Lease,
) -> Result<u64> {
    let mut tx =
        pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await.map_err(pool_error)?;
    let row: Option<LeaseRow> = sqlx::query_as(
        "SELECT holder, epoch, valid_until_ms FROM leases WHERE name = $1 FOR UPDATE",
    )
    .bind(&lease.name)
    .fetch_optional(&mut *tx)
    .await?;
    let now = db_now_ms(&mut tx).await?;
    check_fence(lease, row, now)?;
    let revision: i64 = sqlx::query_scalar(PUT_TRUST_SNAPSHOT_SQL)
        .bind(computed_at_ms)
        .bind(body)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await.map_err(|e| StoreError::WriteFailed(format!("commit: {e}")))?;
    to_u64(revision, "trust snapshot revision")
}

pub(super) async fn acquire_lease(
    w: &mut Write,
    name: &str,
    holder: &str,
    ttl_ms: u64,
) -> Result<Option<Lease>> {
    let row = lease_row(w.conn(), name).await?;
    let now = db_now_ms(w.conn()).await?;
    let Some(lease) = lease_decision(name, holder, ttl_ms, row, now)? else { return Ok(None) };
    sqlx::query(
        "INSERT INTO leases (name, holder, epoch, valid_until_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch, \
         valid_until_ms = excluded.valid_until_ms",
    )
    .bind(&lease.name)
    .bind(&lease.holder)
    .bind(to_i64(lease.epoch, "lease epoch")?)
    .bind(lease.valid_until_ms)
    .execute(w.conn())
    .await?;
    Ok(Some(lease))
}

pub(super) async fn release_lease(w: &mut Write, lease: &Lease) -> Result<bool> {
    if check_lease(w, lease).await.is_err() {
        return Ok(false);
    }
    let now = db_now_ms(w.conn()).await?;
    sqlx::query("UPDATE leases SET valid_until_ms = $1 WHERE name = $2")
        .bind(now)
        .bind(&lease.name)
        .execute(w.conn())
        .await?;
    Ok(true)
}

pub(super) async fn claim_meta(w: &mut Write, key: &str, value: &str) -> Result<String> {
    let now = w.now;
    sqlx::query(
        "INSERT INTO node_meta (meta_key, meta_value, updated_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (meta_key) DO NOTHING",
    )
    .bind(key)
    .bind(value)
    .bind(now)
    .execute(w.conn())
    .await?;
    Ok(sqlx::query_scalar("SELECT meta_value FROM node_meta WHERE meta_key = $1")
        .bind(key)
        .fetch_one(w.conn())
        .await?)
}
