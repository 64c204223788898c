//! [`SqliteStore`]: the embedded default implementation of [`Store`], on SQLite through sqlx.
//!
//! # Layout
//!
//! A data directory (created on first open, mode 0700 on Unix) holds one database file,
//! [`DB_FILE_NAME`], plus SQLite's `-wal` and `-shm` files. The schema is in
//! `crates/atp-store/migrations`, embedded in the binary and applied on open.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`. In WAL mode a commit appends the
//! transaction's pages to the `-wal` file; `FULL` makes SQLite `fsync` that file before
//! `COMMIT` returns, so a transaction is on stable storage before any caller is answered.
//! With `NORMAL` (the usual WAL setting) the WAL is only synced at checkpoints: a commit
//! survives `kill -9` (the data is in the kernel's page cache) but can be lost on power loss or
//! a kernel crash. An acknowledged write here survives both. The cost, one `fsync` per commit,
//! is what group commit (below) spreads over many writes.
//!
//! # Concurrency
//!
//! SQLite allows one writer at a time. All writes go through **one writer task** fed by a
//! bounded channel ([`SqliteConfig::queue_capacity`]); readers use a separate pool of
//! `query_only` connections, which WAL lets run concurrently with the writer, each on a
//! consistent snapshot. Write transactions start with `BEGIN IMMEDIATE`, which takes the write
//! lock up front: a deferred `BEGIN` that reads first and writes later could fail with
//! `SQLITE_BUSY` when it tries to upgrade, if another connection (say a second process on the
//! same file) committed in between. The busy timeout bounds the wait for the lock.
//!
//! # Group commit
//!
//! The writer takes every request already queued (up to [`SqliteConfig::max_batch`], waiting
//! at most [`SqliteConfig::batch_linger`] for more) and commits them together, so that one
//! `fsync` covers the whole batch; each request is answered individually after the commit.
//!
//! - **Bulk path** (KEL appends and evidence, the high-volume writes): one query loads the
//!   heads of every DID in the batch; each request is then validated in memory against the
//!   batch's view (so back-to-back events of one DID, or racing ones, are judged in order); a
//!   request that fails validation is answered with its own error and writes nothing; the rows
//!   of the others go out in a handful of multi-row statements. Statements, not `fsync`, are
//!   the cost that matters here: sqlx hands each statement to a worker thread, about 0.1 ms a
//!   statement on a small VM, so a batch costs a fixed dozen statements whatever its size.
//! - **Isolated path** (everything else, and the fallback): the requests run one after the
//!   other, each inside its own `SAVEPOINT`; a request that fails rolls back to its savepoint
//!   and the others go on. If a bulk batch fails as a whole (a database error while writing),
//!   it is retried on this path, so that one bad request cannot fail the others.
//!
//! With `batch_linger` at zero (the default) a lone writer pays no extra latency, and under
//! load batches form by themselves: requests that arrive while one batch commits make up the
//! next.

mod audit;
mod log_append;
mod read;
mod role_bindings;
mod subject_data;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use atp_core::accepted::AcceptedEvent;
use atp_core::status_list::StatusPurpose;
use atp_core::tlog::Hash;
use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::audit::{
    AuditEntry, AuditQuery, AuditedOutcome, AuditedWrite, StoredAuditBatch, StoredAuditEvent,
    check_audit_entries, check_expiry, check_seal_size,
};
use crate::backend::subject_data::check_erasure_subject;
use crate::backend::{
    BindingWrite, KelAppend, check_bindings, check_id, check_lease_request, check_list_id,
    check_meta, check_status_update, check_trust_evidence, check_trust_snapshot, parse_checkpoint,
    prepare_anchors, prepare_evidence, prepare_status_list,
};
use crate::error::{Result, StoreError};
use crate::model::{
    AppendedEvent, AppliedStatusUpdate, IdentityPage, IdentityRecord, LogEntry, NewEvidence,
    NewSignedStatusUpdate, NewStatusList, StatusListRecord, StatusSlot, StatusUpdate, StoreStats,
    StoredCheckpoint, StoredEvent,
};
use crate::model::{Lease, RoleBinding, RoleBindingChange, RoleBindings, StoredTrustSnapshot};
use crate::model::{
    NewTrustEvidence, RecordedTrustEvidence, TrustEvidenceFilter, TrustEvidencePage,
    TrustEvidenceRecord,
};
use crate::store::{Store, StoreFuture};
use writer::{Reply, WriteOp};

/// The database file inside the data directory.
pub const DB_FILE_NAME: &str = "atp.sqlite3";

/// The embedded schema migrations (`crates/atp-store/migrations`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Tuning of a [`SqliteStore`].
#[derive(Clone, Debug)]
pub struct SqliteConfig {
    /// The most write requests committed in one transaction (at least 1; 1 disables group
    /// commit).
    pub max_batch: usize,
    /// How long the writer waits for more requests once it has one, before committing a batch
    /// that is not full. Zero: commit what is queued at once.
    pub batch_linger: Duration,
    /// The capacity of the write queue; writers wait (back-pressure) when it is full.
    pub queue_capacity: usize,
    /// The number of read connections.
    pub read_connections: u32,
    /// How long a connection waits for a lock held by another connection before failing.
    pub busy_timeout: Duration,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            batch_linger: Duration::ZERO,
            queue_capacity: 1024,
            read_connections: 4,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// The SQLite implementation of [`Store`]. See the [module documentation](self).
///
/// Open it inside a Tokio runtime: it spawns its writer task there.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    read: SqlitePool,
    sender: Mutex<Option<mpsc::Sender<WriteOp>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io { path: path.to_owned(), source }
}

/// Creates the data directory (mode 0700 on Unix) and an empty database file (mode 0600 on
/// Unix, so that SQLite's `-wal` and `-shm` files inherit it), when they do not exist.
fn prepare_data_dir(dir: &Path, db: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| io_error(dir, e))?;
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    match file.open(db) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error(db, e)),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir` with the default configuration.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, SqliteConfig::default()).await
    }

    /// Opens (creating if needed) the store in `dir`: creates the directory and database,
    /// applies the migrations, and starts the writer task.
    pub async fn open_with(dir: impl AsRef<Path>, config: SqliteConfig) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join(DB_FILE_NAME);
        prepare_data_dir(dir, &path)?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Deleted rows are overwritten with zeros: an erased subject's key does not stay
            // in free space (docs/audit.md, "Erasure").
            .pragma("secure_delete", "ON")
            .busy_timeout(config.busy_timeout);
        // One connection: SQLite has one writer, and the writer task is its only user.
        let write_pool =
            SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        MIGRATOR.run(&write_pool).await?;
        let resealed = subject_data::seal_old_rows(&write_pool).await?;
        if resealed > 0 {
            tracing::info!(rows = resealed, "atp-store sealed the trust evidence stored in clear");
        }
        let read = SqlitePoolOptions::new()
            .max_connections(config.read_connections.max(1))
            .connect_with(options.pragma("query_only", "ON"))
            .await?;
        let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let writer = tokio::spawn(writer::run(write_pool, receiver, config));
        tracing::debug!(path = %path.display(), "atp-store opened");
        Ok(Self { path, read, sender: Mutex::new(Some(sender)), writer: Mutex::new(Some(writer)) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a write and waits for its answer, which comes after the commit.
    async fn submit<T>(&self, make: impl FnOnce(Reply<T>) -> WriteOp) -> Result<T> {
        let sender = {
            let guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
            guard.clone().ok_or(StoreError::Closed)?
        };
        let (tx, rx) = oneshot::channel();
        sender.send(make(tx)).await.map_err(|_| StoreError::Closed)?;
        drop(sender);
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Submits a write with its audit events: alone when there are none (a KEL append then
    /// takes the bulk path), else wrapped so that the events join the write's savepoint.
    async fn submit_audited<T>(
        &self,
        audit: Vec<AuditEntry>,
        make: impl FnOnce(Reply<T>) -> WriteOp,
    ) -> Result<T> {
        if audit.is_empty() {
            return self.submit(make).await;
        }
        check_audit_entries(&audit)?;
        self.submit(|reply| WriteOp::Audited { op: Box::new(make(reply)), audit }).await
    }

    async fn append_kel_event_impl(
        &self,
        event: AcceptedEvent,
        audit: Vec<AuditEntry>,
    ) -> Result<AppendedEvent> {
        let req = KelAppend::prepare(event)?;
        self.submit_audited(audit, |reply| WriteOp::AppendKel { req, reply }).await
    }

    async fn put_checkpoint_impl(&self, note: String, fence: Option<Lease>) -> Result<bool> {
        let (size, root) = parse_checkpoint(&note)?;
        self.submit(|reply| WriteOp::PutCheckpoint { note, size, root, fence, reply }).await
    }

    async fn acquire_lease_impl(
        &self,
        name: String,
        holder: String,
        ttl_ms: u64,
    ) -> Result<Option<Lease>> {
        check_lease_request(&name, &holder, ttl_ms)?;
        self.submit(|reply| WriteOp::AcquireLease { name, holder, ttl_ms, reply }).await
    }

    async fn claim_meta_impl(&self, key: String, value: String) -> Result<String> {
        check_meta(&key, &value)?;
        self.submit(|reply| WriteOp::ClaimMeta { key, value, reply }).await
    }

    async fn create_status_list_impl(
        &self,
        list: NewStatusList,
        audit: Vec<AuditEntry>,
    ) -> Result<()> {
        let bits = prepare_status_list(&list)?;
        self.submit_audited(audit, |reply| WriteOp::CreateStatusList { list, bits, reply }).await
    }

    async fn set_status_impl(
        &self,
        list_id: String,
        index: u64,
        value: u8,
        audit: Vec<AuditEntry>,
    ) -> Result<StatusUpdate> {
        check_list_id(&list_id)?;
        self.submit_audited(audit, |reply| WriteOp::SetStatus { list_id, index, value, reply })
            .await
    }

    async fn apply_status_update_impl(
        &self,
        update: NewSignedStatusUpdate,
        audit: Vec<AuditEntry>,
    ) -> Result<AppliedStatusUpdate> {
        check_status_update(&update)?;
        self.submit_audited(audit, |reply| WriteOp::ApplyStatusUpdate { update, reply }).await
    }

    async fn allocate_impl(
        &self,
        issuer: String,
        purpose: StatusPurpose,
        audit: Vec<AuditEntry>,
    ) -> Result<Option<StatusSlot>> {
        check_id("issuer", &issuer)?;
        self.submit_audited(audit, |reply| WriteOp::Allocate { issuer, purpose, reply }).await
    }

    async fn set_trust_anchors_impl(
        &self,
        anchors: Vec<String>,
        meta: Option<(String, String)>,
        audit: Vec<AuditEntry>,
    ) -> Result<u64> {
        let (anchors, data_hash) = prepare_anchors(anchors, meta.as_ref())?;
        self.submit_audited(audit, |reply| WriteOp::SetAnchors { anchors, data_hash, meta, reply })
            .await
    }

    async fn append_evidence_impl(&self, evidence: NewEvidence) -> Result<u64> {
        let data_hash = prepare_evidence(&evidence)?;
        self.submit(|reply| WriteOp::AppendEvidence { evidence, data_hash, reply }).await
    }

    async fn record_trust_evidence_impl(
        &self,
        evidence: NewTrustEvidence,
    ) -> Result<RecordedTrustEvidence> {
        check_trust_evidence(&evidence)?;
        self.submit(|reply| WriteOp::RecordTrustEvidence { evidence, reply }).await
    }

    async fn set_meta_impl(&self, key: String, value: String) -> Result<()> {
        check_meta(&key, &value)?;
        self.submit(|reply| WriteOp::SetMeta { key, value, reply }).await
    }

    async fn write_role_bindings_impl(
        &self,
        kind: BindingWrite,
        bindings: Vec<RoleBinding>,
        audit: Vec<AuditEntry>,
    ) -> Result<Option<RoleBindingChange>> {
        check_bindings(&bindings)?;
        self.submit_audited(audit, |reply| WriteOp::WriteRoleBindings { kind, bindings, reply })
            .await
    }

    async fn change_role_bindings_impl(
        &self,
        kind: BindingWrite,
        bindings: Vec<RoleBinding>,
        audit: Vec<AuditEntry>,
    ) -> Result<RoleBindingChange> {
        self.write_role_bindings_impl(kind, bindings, audit)
            .await?
            .ok_or_else(|| StoreError::corrupt("an add or remove of role bindings was skipped"))
    }

    async fn write_audited_impl(
        &self,
        write: AuditedWrite,
        audit: Vec<AuditEntry>,
    ) -> Result<AuditedOutcome> {
        Ok(match write {
            AuditedWrite::Nothing => {
                check_audit_entries(&audit)?;
                if !audit.is_empty() {
                    self.submit(|reply| WriteOp::AppendAudit { audit, reply }).await?;
                }
                AuditedOutcome::Nothing
            }
            AuditedWrite::AppendKel(event) => {
                AuditedOutcome::Appended(self.append_kel_event_impl(*event, audit).await?)
            }
            AuditedWrite::CreateStatusList(list) => {
                self.create_status_list_impl(list, audit).await?;
                AuditedOutcome::Nothing
            }
            AuditedWrite::SetStatus { list_id, index, value } => {
                AuditedOutcome::Status(self.set_status_impl(list_id, index, value, audit).await?)
            }
            AuditedWrite::ApplyStatusUpdate(update) => AuditedOutcome::StatusUpdateApplied(
                self.apply_status_update_impl(update, audit).await?,
            ),
            AuditedWrite::AllocateStatusIndex { issuer, purpose } => {
                AuditedOutcome::Allocated(self.allocate_impl(issuer, purpose, audit).await?)
            }
            AuditedWrite::SetTrustAnchors { anchors, meta } => {
                AuditedOutcome::AnchorsSet(self.set_trust_anchors_impl(anchors, meta, audit).await?)
            }
            AuditedWrite::AddRoleBindings(bindings) => AuditedOutcome::RoleBindings(
                self.change_role_bindings_impl(BindingWrite::Add, bindings, audit).await?,
            ),
            AuditedWrite::RemoveRoleBindings(bindings) => AuditedOutcome::RoleBindings(
                self.change_role_bindings_impl(BindingWrite::Remove, bindings, audit).await?,
            ),
            AuditedWrite::EraseSubject { subject } => {
                check_erasure_subject(&subject)?;
                AuditedOutcome::Erased(
                    self.submit_audited(audit, |reply| WriteOp::EraseSubject { subject, reply })
                        .await?,
                )
            }
        })
    }

    async fn close_impl(&self) -> Result<()> {
        // Dropping the last sender lets the writer drain the queue and stop.
        drop(self.sender.lock().unwrap_or_else(|p| p.into_inner()).take());
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            handle.await.map_err(|e| StoreError::WriteFailed(format!("writer task: {e}")))?;
        }
        self.read.close().await;
        Ok(())
    }
}

impl Store for SqliteStore {
    fn append_kel_event(&self, event: AcceptedEvent) -> StoreFuture<'_, AppendedEvent> {
        Box::pin(self.append_kel_event_impl(event, Vec::new()))
    }

    fn get_kel<'a>(&'a self, did: &'a str) -> StoreFuture<'a, Vec<StoredEvent>> {
        Box::pin(read::get_kel(&self.read, did))
    }

    fn get_kel_event<'a>(
        &'a self,
        did: &'a str,
        sequence: u64,
    ) -> StoreFuture<'a, Option<StoredEvent>> {
        Box::pin(read::get_kel_event(&self.read, did, sequence))
    }

    fn get_identity<'a>(&'a self, did: &'a str) -> StoreFuture<'a, Option<IdentityRecord>> {
        Box::pin(read::get_identity(&self.read, did))
    }

    fn list_identities<'a>(
        &'a self,
        page_size: u32,
        page_token: Option<&'a str>,
    ) -> StoreFuture<'a, IdentityPage> {
        Box::pin(read::list_identities(&self.read, page_size, page_token))
    }

    fn identity_count(&self) -> StoreFuture<'_, u64> {
        Box::pin(read::identity_count(&self.read))
    }

    fn log_size(&self) -> StoreFuture<'_, u64> {
        Box::pin(read::log_size(&self.read))
    }

    fn root_at(&self, size: u64) -> StoreFuture<'_, Hash> {
        Box::pin(read::root_at(&self.read, size))
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> StoreFuture<'_, Vec<Hash>> {
        Box::pin(read::inclusion_proof(&self.read, index, size))
    }

    fn consistency_proof(&self, old_size: u64, new_size: u64) -> StoreFuture<'_, Vec<Hash>> {
        Box::pin(read::consistency_proof(&self.read, old_size, new_size))
    }

    fn get_entries(&self, start: u64, limit: u32) -> StoreFuture<'_, Vec<LogEntry>> {
        Box::pin(read::get_entries(&self.read, start, limit))
    }

    fn put_checkpoint(&self, note: String) -> StoreFuture<'_, bool> {
        Box::pin(self.put_checkpoint_impl(note, None))
    }

    fn put_checkpoint_fenced(&self, note: String, lease: Lease) -> StoreFuture<'_, bool> {
        Box::pin(self.put_checkpoint_impl(note, Some(lease)))
    }

    fn acquire_lease(
        &self,
        name: String,
        holder: String,
        ttl_ms: u64,
    ) -> StoreFuture<'_, Option<Lease>> {
        Box::pin(self.acquire_lease_impl(name, holder, ttl_ms))
    }

    fn release_lease(&self, lease: Lease) -> StoreFuture<'_, bool> {
        Box::pin(self.submit(|reply| WriteOp::ReleaseLease { lease, reply }))
    }

    fn put_trust_snapshot_fenced(
        &self,
        computed_at_ms: i64,
        body: Vec<u8>,
        lease: Lease,
    ) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            check_trust_snapshot(computed_at_ms, &body)?;
            self.submit(|reply| WriteOp::PutTrustSnapshot { computed_at_ms, body, lease, reply })
                .await
        })
    }

    fn trust_snapshot_revision(&self) -> StoreFuture<'_, Option<(u64, i64)>> {
        Box::pin(read::trust_snapshot_revision(&self.read))
    }

    fn trust_snapshot(&self) -> StoreFuture<'_, Option<StoredTrustSnapshot>> {
        Box::pin(read::trust_snapshot(&self.read))
    }

    fn claim_meta(&self, key: String, value: String) -> StoreFuture<'_, String> {
        Box::pin(self.claim_meta_impl(key, value))
    }

    fn record_once(&self, digest: Hash, keep_until_ms: i64, now_ms: i64) -> StoreFuture<'_, bool> {
        Box::pin(self.submit(move |reply| WriteOp::RecordOnce {
            digest,
            keep_until_ms,
            now_ms,
            reply,
        }))
    }

    fn once_record_live(&self, digest: Hash, now_ms: i64) -> StoreFuture<'_, bool> {
        Box::pin(read::once_record_live(&self.read, digest, now_ms))
    }

    fn purge_once_records(&self, now_ms: i64, limit: u32) -> StoreFuture<'_, u64> {
        Box::pin(self.submit(move |reply| WriteOp::PurgeOnce { now_ms, limit, reply }))
    }

    fn latest_checkpoint(&self) -> StoreFuture<'_, Option<StoredCheckpoint>> {
        Box::pin(read::checkpoint(&self.read, None))
    }

    fn checkpoint_at(&self, size: u64) -> StoreFuture<'_, Option<StoredCheckpoint>> {
        Box::pin(read::checkpoint(&self.read, Some(size)))
    }

    fn create_status_list(&self, list: NewStatusList) -> StoreFuture<'_, ()> {
        Box::pin(self.create_status_list_impl(list, Vec::new()))
    }

    fn set_status(&self, list_id: String, index: u64, value: u8) -> StoreFuture<'_, StatusUpdate> {
        Box::pin(self.set_status_impl(list_id, index, value, Vec::new()))
    }

    fn apply_status_update(
        &self,
        update: NewSignedStatusUpdate,
    ) -> StoreFuture<'_, AppliedStatusUpdate> {
        Box::pin(self.apply_status_update_impl(update, Vec::new()))
    }

    fn get_status_list<'a>(
        &'a self,
        list_id: &'a str,
    ) -> StoreFuture<'a, Option<StatusListRecord>> {
        Box::pin(read::get_status_list(&self.read, list_id))
    }

    fn allocate_status_index(
        &self,
        issuer: String,
        purpose: StatusPurpose,
    ) -> StoreFuture<'_, Option<StatusSlot>> {
        Box::pin(self.allocate_impl(issuer, purpose, Vec::new()))
    }

    fn find_leaf<'a>(&'a self, leaf_hash: &'a Hash) -> StoreFuture<'a, Option<u64>> {
        Box::pin(read::find_leaf(&self.read, leaf_hash))
    }

    fn set_trust_anchors(&self, anchors: Vec<String>) -> StoreFuture<'_, u64> {
        Box::pin(self.set_trust_anchors_impl(anchors, None, Vec::new()))
    }

    fn set_trust_anchors_with_meta(
        &self,
        anchors: Vec<String>,
        meta_key: String,
        meta_value: String,
    ) -> StoreFuture<'_, u64> {
        Box::pin(self.set_trust_anchors_impl(anchors, Some((meta_key, meta_value)), Vec::new()))
    }

    fn list_trust_anchors(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(read::list_trust_anchors(&self.read))
    }

    fn append_evidence(&self, evidence: NewEvidence) -> StoreFuture<'_, u64> {
        Box::pin(self.append_evidence_impl(evidence))
    }

    fn record_trust_evidence(
        &self,
        evidence: NewTrustEvidence,
    ) -> StoreFuture<'_, RecordedTrustEvidence> {
        Box::pin(self.record_trust_evidence_impl(evidence))
    }

    fn list_trust_evidence<'a>(
        &'a self,
        filter: &'a TrustEvidenceFilter,
        page_size: u32,
        page_token: Option<&'a str>,
    ) -> StoreFuture<'a, TrustEvidencePage> {
        Box::pin(read::list_trust_evidence(&self.read, filter, page_size, page_token))
    }

    fn scan_trust_evidence(
        &self,
        after_log_index: Option<u64>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<TrustEvidenceRecord>> {
        Box::pin(read::scan_trust_evidence(&self.read, after_log_index, limit))
    }

    fn evidence_subjects<'a>(
        &'a self,
        evidence_type: &'a str,
        after: Option<&'a str>,
        limit: u32,
    ) -> StoreFuture<'a, Vec<String>> {
        Box::pin(read::evidence_subjects(&self.read, evidence_type, after, limit))
    }

    fn get_meta<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(read::get_meta(&self.read, key))
    }

    fn set_meta(&self, key: String, value: String) -> StoreFuture<'_, ()> {
        Box::pin(self.set_meta_impl(key, value))
    }

    fn list_role_bindings(&self) -> StoreFuture<'_, RoleBindings> {
        Box::pin(role_bindings::list(&self.read))
    }

    fn role_bindings_revision(&self) -> StoreFuture<'_, u64> {
        Box::pin(role_bindings::revision(&self.read))
    }

    fn add_role_bindings(&self, bindings: Vec<RoleBinding>) -> StoreFuture<'_, RoleBindingChange> {
        Box::pin(self.change_role_bindings_impl(BindingWrite::Add, bindings, Vec::new()))
    }

    fn remove_role_bindings(
        &self,
        bindings: Vec<RoleBinding>,
    ) -> StoreFuture<'_, RoleBindingChange> {
        Box::pin(self.change_role_bindings_impl(BindingWrite::Remove, bindings, Vec::new()))
    }

    fn seed_role_bindings(
        &self,
        bindings: Vec<RoleBinding>,
    ) -> StoreFuture<'_, Option<RoleBindingChange>> {
        Box::pin(self.write_role_bindings_impl(BindingWrite::Seed, bindings, Vec::new()))
    }

    fn stats(&self) -> StoreFuture<'_, StoreStats> {
        Box::pin(read::stats(&self.read))
    }

    fn kel_change_feed(
        &self,
        _catch_up_period: std::time::Duration,
    ) -> StoreFuture<'_, Option<Box<dyn crate::KelChangeFeed>>> {
        // The embedded database has one writer, this process.
        Box::pin(async { Ok(None) })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.close_impl())
    }

    fn write_audited(
        &self,
        write: AuditedWrite,
        audit: Vec<AuditEntry>,
    ) -> StoreFuture<'_, AuditedOutcome> {
        Box::pin(self.write_audited_impl(write, audit))
    }

    fn seal_audit_batch(&self, max_events: u32) -> StoreFuture<'_, Option<StoredAuditBatch>> {
        Box::pin(async move {
            check_seal_size(max_events)?;
            self.submit(|reply| WriteOp::SealAudit { max_events, reply }).await
        })
    }

    fn list_audit_events(&self, query: AuditQuery) -> StoreFuture<'_, Vec<StoredAuditEvent>> {
        Box::pin(audit::list_events(&self.read, query))
    }

    fn list_audit_batches(&self, after: u64, limit: u32) -> StoreFuture<'_, Vec<StoredAuditBatch>> {
        Box::pin(audit::list_batches(&self.read, after, limit))
    }

    fn expire_audit_batches(
        &self,
        sealed_before_ms: i64,
        max_batches: u32,
    ) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            check_expiry(max_batches)?;
            self.submit(|reply| WriteOp::ExpireAudit { sealed_before_ms, max_batches, reply }).await
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backend::now_ms;

    /// The durability settings are in force on the connections (the read pool shares the
    /// writer's options, plus `query_only`).
    #[tokio::test]
    async fn connections_use_wal_full_sync_foreign_keys_and_secure_delete() {
        let dir = std::env::temp_dir().join(format!(
            "atp-store-unit-pragmas-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let store = SqliteStore::open(&dir).await.unwrap();
        let mut conn = store.read.acquire().await.unwrap();
        let mode: String =
            sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *conn).await.unwrap();
        let sync: i64 =
            sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await.unwrap();
        let fk: i64 =
            sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut *conn).await.unwrap();
        let ro: i64 = sqlx::query_scalar("PRAGMA query_only").fetch_one(&mut *conn).await.unwrap();
        assert_eq!((mode.as_str(), sync, fk, ro), ("wal", 2, 1, 1)); // synchronous 2 = FULL
        // Erasure relies on it (docs/audit.md, "Erasure").
        let secure: i64 =
            sqlx::query_scalar("PRAGMA secure_delete").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(secure, 1);
        // The read pool cannot write.
        assert!(sqlx::query("DELETE FROM node_meta").execute(&mut *conn).await.is_err());
        drop(conn);
        store.close().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// New events are stored compressed; a row in the form before migration 0006 (plain
    /// `event_json`, no `event_deflate`) still reads back as the same event.
    #[tokio::test]
    async fn events_are_stored_deflated_and_old_rows_still_read() {
        use atp_crypto::{AlgorithmId, SigningKey};
        let dir = std::env::temp_dir().join(format!(
            "atp-store-unit-deflate-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let store = SqliteStore::open(&dir).await.unwrap();
        let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
        let next = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
        let icp =
            atp_core::kel::incept(&key, next.public_key_ref(), vec![], "2026-01-01T00:00:00Z")
                .unwrap();
        let did = format!("did:atp:{}", icp.event.scid().unwrap());
        let accepted = atp_core::kel::KeyEventLog::new().accept(&did, None, icp.clone()).unwrap();
        store.append_kel_event(accepted).await.unwrap();
        let canonical = icp.canonical_bytes().unwrap();

        let mut conn = store.read.acquire().await.unwrap();
        let (json, deflated): (String, Option<Vec<u8>>) =
            sqlx::query_as("SELECT event_json, event_deflate FROM kel_events WHERE did = $1")
                .bind(&did)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        drop(conn);
        let deflated = deflated.unwrap();
        assert!(json.is_empty());
        assert!(
            deflated.len() * 100 < canonical.len() * 85,
            "{} of {}",
            deflated.len(),
            canonical.len()
        );
        assert_eq!(crate::backend::event_codec::inflate(&deflated).unwrap(), canonical);
        assert_eq!(store.get_kel(&did).await.unwrap()[0].event, icp);

        // Rewrite the row as the first migrations stored it, through a second connection.
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join(DB_FILE_NAME));
        let mut raw =
            <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options).await.unwrap();
        sqlx::query("UPDATE kel_events SET event_json = $1, event_deflate = NULL WHERE did = $2")
            .bind(String::from_utf8(canonical).unwrap())
            .bind(&did)
            .execute(&mut raw)
            .await
            .unwrap();
        drop(raw);
        assert_eq!(store.get_kel(&did).await.unwrap()[0].event, icp);
        assert_eq!(store.get_kel_event(&did, 0).await.unwrap().unwrap().event, icp);
        store.close().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
