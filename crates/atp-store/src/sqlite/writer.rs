//! The single writer task: group commit with one savepoint per request.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use atp_core::status_list::StatusPurpose;
use atp_core::tlog::Hash;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::SqliteConfig;
use super::audit;
use super::log_append::{append_leaf, load_frontier};
use super::read::root_on;
use super::subject_data;
use crate::audit::{AuditEntry, StoredAuditBatch};
use crate::backend::{
    BindingWrite, Frontier, KelAppend, LeaseRow, NodeKey, PURGE_ONCE_SQL, PUT_TRUST_SNAPSHOT_SQL,
    RECORD_ONCE_SQL, StoredList, apply_status_update_rule, check_checkpoint_fits, check_fence,
    lease_decision, now_ms, set_status_rule, status_reference, status_update_reference, to_i64,
    to_u64,
};
use crate::error::{Result, StoreError};
use crate::model::{
    AppendedEvent, AppliedStatusUpdate, KelHead, NewEvidence, NewSignedStatusUpdate, NewStatusList,
    StatusSlot, StatusUpdate,
};
use crate::model::{Lease, NewTrustEvidence, RecordedTrustEvidence, SubjectErasure};
use atp_core::log_entry::{LeafKind, entry_leaf_hash, status_update_data_hash};

/// Where a request's answer goes.
pub(super) type Reply<T> = oneshot::Sender<Result<T>>;

/// One write request.
#[derive(Debug)]
pub(super) enum WriteOp {
    AppendKel {
        req: KelAppend,
        reply: Reply<AppendedEvent>,
    },
    PutCheckpoint {
        note: String,
        size: u64,
        root: Hash,
        fence: Option<Lease>,
        reply: Reply<bool>,
    },
    AcquireLease {
        name: String,
        holder: String,
        ttl_ms: u64,
        reply: Reply<Option<Lease>>,
    },
    ReleaseLease {
        lease: Lease,
        reply: Reply<bool>,
    },
    ClaimMeta {
        key: String,
        value: String,
        reply: Reply<String>,
    },
    PutTrustSnapshot {
        computed_at_ms: i64,
        body: Vec<u8>,
        lease: Lease,
        reply: Reply<u64>,
    },
    RecordOnce {
        digest: Hash,
        keep_until_ms: i64,
        now_ms: i64,
        reply: Reply<bool>,
    },
    PurgeOnce {
        now_ms: i64,
        limit: u32,
        reply: Reply<u64>,
    },
    CreateStatusList {
        list: NewStatusList,
        bits: Vec<u8>,
        reply: Reply<()>,
    },
    SetStatus {
        list_id: String,
        index: u64,
        value: u8,
        reply: Reply<StatusUpdate>,
    },
    ApplyStatusUpdate {
        update: NewSignedStatusUpdate,
        reply: Reply<AppliedStatusUpdate>,
    },
    Allocate {
        issuer: String,
        purpose: StatusPurpose,
        reply: Reply<Option<StatusSlot>>,
    },
    SetAnchors {
        anchors: Vec<String>,
        data_hash: Hash,
        meta: Option<(String, String)>,
        reply: Reply<u64>,
    },
    AppendEvidence {
        evidence: NewEvidence,
        data_hash: Hash,
        reply: Reply<u64>,
    },
    SetMeta {
        key: String,
        value: String,
        reply: Reply<()>,
    },
    RecordTrustEvidence {
        evidence: NewTrustEvidence,
        reply: Reply<RecordedTrustEvidence>,
    },
    WriteRoleBindings {
        kind: BindingWrite,
        bindings: Vec<crate::model::RoleBinding>,
        reply: Reply<Option<crate::model::RoleBindingChange>>,
    },
    /// A write and the audit events stored in its savepoint: both or neither.
    Audited {
        op: Box<WriteOp>,
        audit: Vec<AuditEntry>,
    },
    /// Audit events alone.
    AppendAudit {
        audit: Vec<AuditEntry>,
        reply: Reply<()>,
    },
    SealAudit {
        max_events: u32,
        reply: Reply<Option<StoredAuditBatch>>,
    },
    EraseSubject {
        subject: String,
        reply: Reply<SubjectErasure>,
    },
    ExpireAudit {
        sealed_before_ms: i64,
        max_batches: u32,
        reply: Reply<u64>,
    },
}

impl WriteOp {
    /// Requests on the bulk path: the high-volume appends, validated in memory and written with
    /// a few multi-row statements per batch.
    fn is_bulk(&self) -> bool {
        self.kel_append().is_some()
            || matches!(self, WriteOp::AppendEvidence { .. } | WriteOp::AppendAudit { .. })
    }

    /// An erasure, alone or audited: its batch ends with a checkpoint that empties the
    /// write-ahead log, so that no copy of the destroyed key stays in it.
    fn erases(&self) -> bool {
        match self {
            WriteOp::EraseSubject { .. } => true,
            WriteOp::Audited { op, .. } => op.erases(),
            _ => false,
        }
    }

    /// A KEL append and its audit events (none when it is not audited).
    fn kel_append(&self) -> Option<(&KelAppend, &[AuditEntry])> {
        match self {
            WriteOp::AppendKel { req, .. } => Some((req, &[])),
            WriteOp::Audited { op, audit } => match op.as_ref() {
                WriteOp::AppendKel { req, .. } => Some((req, audit.as_slice())),
                _ => None,
            },
            _ => None,
        }
    }

    /// Answers the request with an error without running it.
    fn fail(self, e: StoreError) {
        // A caller that went away is not waiting for the answer.
        match self {
            WriteOp::AppendKel { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::PutCheckpoint { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::AcquireLease { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::ReleaseLease { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::ClaimMeta { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::PutTrustSnapshot { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::RecordOnce { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::PurgeOnce { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::CreateStatusList { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::SetStatus { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::ApplyStatusUpdate { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::Allocate { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::SetAnchors { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::AppendEvidence { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::SetMeta { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::RecordTrustEvidence { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::WriteRoleBindings { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::Audited { op, .. } => op.fail(e),
            WriteOp::AppendAudit { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::SealAudit { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::EraseSubject { reply, .. } => drop(reply.send(Err(e))),
            WriteOp::ExpireAudit { reply, .. } => drop(reply.send(Err(e))),
        }
    }
}

/// Sends a request's answer once the batch's fate is known: `Some(reason)` if the batch
/// transaction failed as a whole.
type Finish = Box<dyn FnOnce(Option<&str>) + Send>;

/// Pairs a request's own result with its reply; whether it succeeded decides its savepoint.
fn finish<T: Send + 'static>(reply: Reply<T>, result: Result<T>) -> (bool, Finish) {
    let ok = result.is_ok();
    let f: Finish = Box::new(move |batch_error: Option<&str>| {
        let answer = match (batch_error, result) {
            // A request that failed on its own is answered with its own error either way.
            (_, Err(e)) => Err(e),
            (Some(reason), Ok(_)) => Err(StoreError::WriteFailed(reason.to_owned())),
            (None, Ok(v)) => Ok(v),
        };
        drop(reply.send(answer));
    });
    (ok, f)
}

/// The writer task: receives requests until every sender is gone, commits them in batches.
pub(super) async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<WriteOp>, config: SqliteConfig) {
    let max = config.max_batch.max(1);
    let mut batch = Vec::with_capacity(max);
    loop {
        if rx.recv_many(&mut batch, max).await == 0 {
            break;
        }
        if !config.batch_linger.is_zero() {
            let deadline = tokio::time::Instant::now() + config.batch_linger;
            while batch.len() < max {
                let room = max - batch.len();
                let more = rx.recv_many(&mut batch, room);
                match tokio::time::timeout_at(deadline, more).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        commit_batch(&pool, std::mem::take(&mut batch)).await;
        batch.reserve(max);
    }
    pool.close().await;
    tracing::debug!("atp-store writer stopped");
}

async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), String> {
    sqlx::query(sql).execute(conn).await.map(|_| ()).map_err(|e| e.to_string())
}

/// Commits one batch: the bulk requests in one transaction on the bulk path, the others in one
/// transaction with a savepoint each.
async fn commit_batch(pool: &SqlitePool, batch: Vec<WriteOp>) {
    let (bulk, other): (Vec<_>, Vec<_>) = batch.into_iter().partition(WriteOp::is_bulk);
    if !other.is_empty() {
        commit_isolated(pool, other).await;
    }
    if !bulk.is_empty() {
        commit_bulk(pool, bulk).await;
    }
}

/// Runs requests in one transaction, each inside its own savepoint, and answers every one.
async fn commit_isolated(pool: &SqlitePool, batch: Vec<WriteOp>) {
    let n = batch.len();
    let erases = batch.iter().any(WriteOp::erases);
    let mut tx: Transaction<'static, Sqlite> = match pool.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            let reason = format!("begin: {e}");
            batch.into_iter().for_each(|op| op.fail(StoreError::WriteFailed(reason.clone())));
            return;
        }
    };
    let mut frontier = match load_frontier(&mut tx).await {
        Ok(f) => f,
        Err(e) => {
            let reason = format!("reading the log frontier: {e}");
            drop(tx.rollback().await);
            batch.into_iter().for_each(|op| op.fail(StoreError::WriteFailed(reason.clone())));
            return;
        }
    };
    let now = now_ms();
    let mut finishes: Vec<Finish> = Vec::with_capacity(n);
    let mut broken: Option<String> = None;
    let mut ops = batch.into_iter();
    for op in ops.by_ref() {
        if let Err(e) = exec(&mut tx, "SAVEPOINT atp_item").await {
            broken = Some(format!("savepoint: {e}"));
            op.fail(StoreError::WriteFailed(format!("savepoint: {e}")));
            break;
        }
        let saved = frontier.clone();
        let (ok, fin) = apply(&mut tx, &mut frontier, op, now).await;
        finishes.push(fin);
        let end = if ok {
            exec(&mut tx, "RELEASE SAVEPOINT atp_item").await
        } else {
            frontier = saved;
            match exec(&mut tx, "ROLLBACK TO SAVEPOINT atp_item").await {
                Ok(()) => exec(&mut tx, "RELEASE SAVEPOINT atp_item").await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = end {
            broken = Some(format!("savepoint: {e}"));
            break;
        }
    }
    let outcome = match broken {
        Some(reason) => {
            drop(tx.rollback().await);
            Err(reason)
        }
        None => tx.commit().await.map_err(|e| format!("commit: {e}")),
    };
    if erases && outcome.is_ok() {
        // Before the answers: an acknowledged erasure leaves no copy of the key in the log.
        super::subject_data::empty_write_ahead_log(pool).await;
    }
    if let Err(reason) = &outcome {
        tracing::warn!(requests = n, %reason, "atp-store write batch failed");
    } else {
        tracing::trace!(requests = n, log_size = frontier.size(), "atp-store batch committed");
    }
    let batch_error = outcome.as_ref().err().map(String::as_str);
    for f in finishes {
        f(batch_error);
    }
    for op in ops {
        op.fail(StoreError::WriteFailed(batch_error.unwrap_or("batch aborted").to_owned()));
    }
}

/// Runs one request inside the open savepoint.
async fn apply(
    conn: &mut SqliteConnection,
    frontier: &mut Frontier,
    op: WriteOp,
    now: i64,
) -> (bool, Finish) {
    match op {
        WriteOp::Audited { op, audit } => {
            // Boxed: the inner request is applied by this same function.
            let (ok, fin) = Box::pin(apply(conn, frontier, *op, now)).await;
            if !ok {
                return (false, fin);
            }
            match audit::insert_entries(conn, &audit).await {
                Ok(()) => (true, fin),
                Err(e) => {
                    // The savepoint is rolled back: the change goes with its events.
                    fin(Some(&format!("storing its audit events failed: {e}")));
                    (false, Box::new(|_| {}))
                }
            }
        }
        WriteOp::AppendAudit { audit, reply } => {
            finish(reply, audit::insert_entries(conn, &audit).await)
        }
        WriteOp::SealAudit { max_events, reply } => {
            finish(reply, audit::seal(conn, frontier, max_events, now).await)
        }
        WriteOp::ExpireAudit { sealed_before_ms, max_batches, reply } => {
            finish(reply, audit::expire(conn, sealed_before_ms, max_batches, now).await)
        }
        WriteOp::AppendKel { req, reply } => {
            finish(reply, append_kel(conn, frontier, req, now).await)
        }
        WriteOp::PutCheckpoint { note, size, root, fence, reply } => {
            let result = match fence {
                Some(lease) => match check_lease(conn, &lease, now).await {
                    Ok(()) => put_checkpoint(conn, frontier, note, size, root, now).await,
                    Err(e) => Err(e),
                },
                None => put_checkpoint(conn, frontier, note, size, root, now).await,
            };
            finish(reply, result)
        }
        WriteOp::AcquireLease { name, holder, ttl_ms, reply } => {
            finish(reply, acquire_lease(conn, name, holder, ttl_ms, now).await)
        }
        WriteOp::ReleaseLease { lease, reply } => {
            finish(reply, release_lease(conn, lease, now).await)
        }
        WriteOp::ClaimMeta { key, value, reply } => {
            finish(reply, claim_meta(conn, key, value, now).await)
        }
        WriteOp::PutTrustSnapshot { computed_at_ms, body, lease, reply } => {
            let result = match check_lease(conn, &lease, now).await {
                Ok(()) => put_trust_snapshot(conn, computed_at_ms, body).await,
                Err(e) => Err(e),
            };
            finish(reply, result)
        }
        WriteOp::RecordOnce { digest, keep_until_ms, now_ms, reply } => {
            finish(reply, record_once(conn, digest, keep_until_ms, now_ms).await)
        }
        WriteOp::PurgeOnce { now_ms, limit, reply } => {
            finish(reply, purge_once_records(conn, now_ms, limit).await)
        }
        WriteOp::CreateStatusList { list, bits, reply } => {
            finish(reply, create_status_list(conn, list, bits, now).await)
        }
        WriteOp::SetStatus { list_id, index, value, reply } => {
            finish(reply, set_status(conn, frontier, list_id, index, value, now).await)
        }
        WriteOp::ApplyStatusUpdate { update, reply } => {
            finish(reply, apply_status_update(conn, frontier, update, now).await)
        }
        WriteOp::Allocate { issuer, purpose, reply } => {
            finish(reply, allocate(conn, issuer, purpose).await)
        }
        WriteOp::SetAnchors { anchors, data_hash, meta, reply } => {
            finish(reply, set_anchors(conn, frontier, anchors, data_hash, meta, now).await)
        }
        WriteOp::AppendEvidence { evidence, data_hash, reply } => {
            finish(reply, append_evidence(conn, frontier, evidence, data_hash, now).await)
        }
        WriteOp::SetMeta { key, value, reply } => {
            finish(reply, set_meta(conn, key, value, now).await)
        }
        WriteOp::RecordTrustEvidence { evidence, reply } => {
            finish(reply, subject_data::record_trust_evidence(conn, frontier, evidence, now).await)
        }
        WriteOp::WriteRoleBindings { kind, bindings, reply } => {
            finish(reply, super::role_bindings::write(conn, frontier, kind, bindings, now).await)
        }
        WriteOp::EraseSubject { subject, reply } => {
            finish(reply, subject_data::erase_subject(conn, frontier, subject, now).await)
        }
    }
}

async fn append_kel(
    conn: &mut SqliteConnection,
    frontier: &mut Frontier,
    req: KelAppend,
    now: i64,
) -> Result<AppendedEvent> {
    let row: Option<(i64, String, bool)> =
        sqlx::query_as("SELECT seq, digest, deactivated FROM identities WHERE did = $1")
            .bind(&req.did)
            .fetch_optional(&mut *conn)
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
    let log_index =
        append_leaf(conn, frontier, LeafKind::Kel, &req.data_hash, Some(req.reference()), now)
            .await?;
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
            .execute(&mut *conn)
            .await
            .map_err(|e| req.conflict_on_unique(e))?;
            sqlx::query(
                "UPDATE store_counters SET counter_value = counter_value + 1 \
                 WHERE counter_name = 'identities'",
            )
            .execute(&mut *conn)
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
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::corrupt("identity row changed inside the write lock"));
            }
        }
    }
    sqlx::query(
        "INSERT INTO kel_events (did, seq, event_type, digest, event_json, event_deflate, \
         log_index, stored_at_ms) VALUES ($1, $2, $3, $4, '', $5, $6, $7)",
    )
    .bind(&req.did)
    .bind(seq)
    .bind(req.event_type)
    .bind(&req.digest)
    .bind(&req.deflated)
    .bind(to_i64(log_index, "log index")?)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| req.conflict_on_unique(e))?;
    Ok(AppendedEvent { did: req.did, sequence: req.sequence, digest: req.digest, log_index })
}

async fn put_checkpoint(
    conn: &mut SqliteConnection,
    frontier: &Frontier,
    note: String,
    size: u64,
    root: Hash,
    now: i64,
) -> Result<bool> {
    let log_root = root_on(conn, size.min(frontier.size())).await?;
    check_checkpoint_fits(size, frontier.size(), &log_root, &root)?;
    let done = sqlx::query(
        "INSERT INTO checkpoints (tree_size, root_hash, note, created_at_ms) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING",
    )
    .bind(to_i64(size, "checkpoint size")?)
    .bind(&root[..])
    .bind(note)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn create_status_list(
    conn: &mut SqliteConnection,
    list: NewStatusList,
    bits: Vec<u8>,
    now: i64,
) -> Result<()> {
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
    .execute(&mut *conn)
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
async fn stored_list(conn: &mut SqliteConnection, list_id: &str) -> Result<StoredList> {
    let row: Option<(String, String, i64, i64, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT issuer, purpose, status_size, entries, bitstring, list_version \
         FROM status_lists WHERE list_id = $1",
    )
    .bind(list_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((issuer, purpose, status_size, entries, bits, version)) = row else {
        return Err(StoreError::NotFound { what: "status list", id: list_id.to_owned() });
    };
    Ok(StoredList { issuer, purpose, status_size, entries, bits, version })
}

async fn set_status(
    conn: &mut SqliteConnection,
    frontier: &mut Frontier,
    list_id: String,
    index: u64,
    value: u8,
    now: i64,
) -> Result<StatusUpdate> {
    let stored = stored_list(conn, &list_id).await?;
    let outcome = set_status_rule(&list_id, stored, index, value)?;
    let previous = outcome.previous;
    let Some((bits, new_version, data_hash)) = outcome.change else {
        return Ok(StatusUpdate { version: outcome.version, previous, log_index: None });
    };
    sqlx::query(
        "UPDATE status_lists SET bitstring = $1, list_version = $2, updated_at_ms = $3 \
         WHERE list_id = $4",
    )
    .bind(bits)
    .bind(to_i64(new_version, "list version")?)
    .bind(now)
    .bind(&list_id)
    .execute(&mut *conn)
    .await?;
    let reference = status_reference(&list_id, index);
    let log_index =
        append_leaf(conn, frontier, LeafKind::Status, &data_hash, Some(reference), now).await?;
    Ok(StatusUpdate { version: new_version, previous, log_index: Some(log_index) })
}

async fn apply_status_update(
    conn: &mut SqliteConnection,
    frontier: &mut Frontier,
    update: NewSignedStatusUpdate,
    now: i64,
) -> Result<AppliedStatusUpdate> {
    let stored = stored_list(conn, &update.list_id).await?;
    let (bits, changed) = apply_status_update_rule(&update, stored)?;
    sqlx::query(
        "UPDATE status_lists SET bitstring = $1, list_version = $2, updated_at_ms = $3 \
         WHERE list_id = $4",
    )
    .bind(bits)
    .bind(to_i64(update.update_seq, "update_seq")?)
    .bind(now)
    .bind(&update.list_id)
    .execute(&mut *conn)
    .await?;
    let data_hash = status_update_data_hash(&update.update, &update.signature)?;
    let reference = status_update_reference(&update);
    let log_index =
        append_leaf(conn, frontier, LeafKind::StatusUpdate, &data_hash, Some(reference), now)
            .await?;
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
    .execute(&mut *conn)
    .await?;
    Ok(AppliedStatusUpdate { version: update.update_seq, changed, log_index })
}

async fn allocate(
    conn: &mut SqliteConnection,
    issuer: String,
    purpose: StatusPurpose,
) -> Result<Option<StatusSlot>> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT list_id, next_index FROM status_lists \
         WHERE issuer = $1 AND purpose = $2 AND allocatable = $3 AND next_index < entries \
         ORDER BY created_at_ms, list_id LIMIT 1",
    )
    .bind(&issuer)
    .bind(purpose.as_str())
    .bind(true)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((list_id, next)) = row else { return Ok(None) };
    sqlx::query("UPDATE status_lists SET next_index = next_index + 1 WHERE list_id = $1")
        .bind(&list_id)
        .execute(&mut *conn)
        .await?;
    Ok(Some(StatusSlot { list_id, index: to_u64(next, "next index")? }))
}

async fn set_anchors(
    conn: &mut SqliteConnection,
    frontier: &mut Frontier,
    anchors: Vec<String>,
    data_hash: Hash,
    meta: Option<(String, String)>,
    now: i64,
) -> Result<u64> {
    sqlx::query("DELETE FROM trust_anchors").execute(&mut *conn).await?;
    if let Some((key, value)) = meta {
        set_meta(conn, key, value, now).await?;
    }
    for did in &anchors {
        sqlx::query("INSERT INTO trust_anchors (did, added_at_ms) VALUES ($1, $2)")
            .bind(did)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    append_leaf(conn, frontier, LeafKind::Anchors, &data_hash, Some("trust-anchors".into()), now)
        .await
}

async fn append_evidence(
    conn: &mut SqliteConnection,
    frontier: &mut Frontier,
    evidence: NewEvidence,
    data_hash: Hash,
    now: i64,
) -> Result<u64> {
    let index = append_leaf(
        conn,
        frontier,
        LeafKind::Evidence,
        &data_hash,
        Some(evidence.subject.clone()),
        now,
    )
    .await?;
    sqlx::query(
        "INSERT INTO evidence (log_index, subject, evidence_type, body, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(to_i64(index, "log index")?)
    .bind(&evidence.subject)
    .bind(&evidence.evidence_type)
    .bind(&evidence.body)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(index)
}

async fn set_meta(conn: &mut SqliteConnection, key: String, value: String, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO node_meta (meta_key, meta_value, updated_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (meta_key) DO UPDATE SET meta_value = excluded.meta_value, \
         updated_at_ms = excluded.updated_at_ms",
    )
    .bind(key)
    .bind(value)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn lease_row(conn: &mut SqliteConnection, name: &str) -> Result<Option<LeaseRow>> {
    Ok(sqlx::query_as("SELECT holder, epoch, valid_until_ms FROM leases WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The fence of a write: `lease` is still the stored, unexpired lease.
async fn check_lease(conn: &mut SqliteConnection, lease: &Lease, now: i64) -> Result<()> {
    let row = lease_row(conn, &lease.name).await?;
    check_fence(lease, row, now)
}

async fn acquire_lease(
    conn: &mut SqliteConnection,
    name: String,
    holder: String,
    ttl_ms: u64,
    now: i64,
) -> Result<Option<Lease>> {
    let row = lease_row(conn, &name).await?;
    let Some(lease) = lease_decision(&name, &holder, ttl_ms, row, now)? else { return Ok(None) };
    sqlx::query(
        "INSERT INTO leases (name, holder, epoch, valid_until_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = excluded.epoch, \
         valid_until_ms = excluded.valid_until_ms",
    )
    .bind(&lease.name)
    .bind(&lease.holder)
    .bind(to_i64(lease.epoch, "lease epoch")?)
    .bind(lease.valid_until_ms)
    .execute(&mut *conn)
    .await?;
    Ok(Some(lease))
}

async fn release_lease(conn: &mut SqliteConnection, lease: Lease, now: i64) -> Result<bool> {
    if check_lease(conn, &lease, now).await.is_err() {
        return Ok(false);
    }
    sqlx::query("UPDATE leases SET valid_until_ms = $1 WHERE name = $2")
        .bind(now)
        .bind(&lease.name)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

async fn put_trust_snapshot(
    conn: &mut SqliteConnection,
    computed_at_ms: i64,
    body: Vec<u8>,
) -> Result<u64> {
    let revision: i64 = sqlx::query_scalar(PUT_TRUST_SNAPSHOT_SQL)
        .bind(computed_at_ms)
        .bind(body)
        .fetch_one(&mut *conn)
        .await?;
    to_u64(revision, "trust snapshot revision")
}

async fn claim_meta(
    conn: &mut SqliteConnection,
    key: String,
    value: String,
    now: i64,
) -> Result<String> {
    sqlx::query(
        "INSERT INTO node_meta (meta_key, meta_value, updated_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (meta_key) DO NOTHING",
    )
    .bind(&key)
    .bind(value)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_scalar("SELECT meta_value FROM node_meta WHERE meta_key = $1")
        .bind(&key)
        .fetch_one(&mut *conn)
        .await?)
}

async fn record_once(
    conn: &mut SqliteConnection,
    digest: Hash,
    keep_until_ms: i64,
    now_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(RECORD_ONCE_SQL)
        .bind(&digest[..])
        .bind(keep_until_ms)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

async fn purge_once_records(conn: &mut SqliteConnection, now_ms: i64, limit: u32) -> Result<u64> {
    let done = sqlx::query(PURGE_ONCE_SQL)
        .bind(now_ms)
        .bind(i64::from(limit.min(crate::MAX_ENTRIES_PER_CALL)))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

mod bulk;
use bulk::commit_bulk;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests;
