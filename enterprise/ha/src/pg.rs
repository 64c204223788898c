//! [`PgStore`]: the [`Store`] on PostgreSQL.
//!
//! # Writes
//!
//! Every write is one `READ COMMITTED` transaction that starts by locking the single row of
//! `tlog_head` (`SELECT size ... FOR UPDATE`). Holding it, the transaction reads the log's
//! frontier, applies the request with the rules of [`atp_store::backend`], appends its leaf and
//! the tree nodes the leaf completes, moves the head, and commits. Writers on every node of a
//! cluster queue on that one row lock, so two transactions can never take the same leaf index
//! or leave a gap, and no node needs to be a leader (the design Tessera's PostgreSQL sequencer
//! uses). Every write takes the lock, also those that append no leaf (a status-list creation, an
//! index allocation, node metadata), which keeps the one ordering rule simple; none of them is
//! on a hot path.
//!
//! # Durability
//!
//! A write is answered after PostgreSQL's `COMMIT` returned, so it is as durable as the
//! server's `synchronous_commit` setting makes it (on by default: flushed to the primary's WAL;
//! with synchronous replication, also on a standby). A commit whose answer is lost with the
//! connection may have happened: the caller re-reads, as the [`Store`] contract says.
//!
//! Key event appends, the high-volume write, go through a group commit ([`batch`]): the appends
//! queued while one transaction commits make up the next, which takes the lock once for all of
//! them. One-time value records (a statement per verified envelope) are grouped the same way
//! ([`once`]); they take no lock of the log.
//!
//! # Reads
//!
//! Reads run on the pool without a transaction. Tree nodes never change once written and the
//! head only grows, so a read that takes the size first and the nodes afterwards always finds
//! every node it needs.

mod audit;
mod batch;
mod failover;
mod feed;
mod once;
mod read;
mod subject_data;
mod write;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use atp_core::accepted::AcceptedEvent;
use atp_core::status_list::StatusPurpose;
use atp_core::tlog::Hash;
use atp_store::audit::{
    AuditEntry, AuditQuery, AuditedOutcome, AuditedWrite, StoredAuditBatch, StoredAuditEvent,
    check_audit_entries, check_expiry, check_seal_size,
};
use atp_store::backend::subject_data::check_erasure_subject;
use atp_store::backend::{
    BindingWrite, KelAppend, check_bindings, check_id, check_lease_request, check_list_id,
    check_meta, check_status_update, check_trust_evidence, check_trust_snapshot, parse_checkpoint,
    prepare_anchors, prepare_evidence, prepare_status_list,
};
use atp_store::{
    AppendedEvent, AppliedStatusUpdate, IdentityPage, IdentityRecord, KelChangeFeed, Lease,
    LogEntry, NewEvidence, NewSignedStatusUpdate, NewStatusList, NewTrustEvidence,
    RecordedTrustEvidence, RoleBinding, RoleBindingChange, RoleBindings, StatusListRecord,
    StatusSlot, StatusUpdate, Store, StoreError, StoreFuture, StoreStats, StoredCheckpoint,
    StoredEvent, StoredTrustSnapshot, TrustEvidenceFilter, TrustEvidencePage, TrustEvidenceRecord,
};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The schema migrations (`enterprise/ha/migrations`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Why [`PgStore::connect_any`] failed.
#[derive(Debug)]
pub enum ConnectError {
    /// No candidate is a writable primary; why each was passed over, in order.
    NoPrimary(Vec<String>),
    /// Connected, but the migrations, or sealing the evidence stored before them, failed.
    Store(StoreError),
}

/// Connection settings of a [`PgStore`].
#[derive(Clone, Debug)]
pub struct PgConfig {
    /// The most connections this node opens to the database.
    pub pool_size: u32,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// How long one statement may run on the server before PostgreSQL cancels it
    /// (`statement_timeout`); also bounds the wait for the log's row lock.
    pub statement_timeout: Duration,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            pool_size: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL implementation of [`Store`]. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct PgStore {
    primary: Arc<failover::Primary>,
    appends: tokio::sync::mpsc::Sender<batch::Job>,
    once_records: tokio::sync::mpsc::Sender<once::Job>,
}

impl PgStore {
    /// Connects to the database `options` names, applies the migrations (under PostgreSQL's
    /// migration lock, so that nodes starting together apply them once) and returns the store.
    pub async fn connect(options: PgConnectOptions, config: &PgConfig) -> Result<Self> {
        Self::connect_any(vec![options], config).await.map_err(|e| match e {
            ConnectError::Store(e) => e,
            ConnectError::NoPrimary(reasons) => StoreError::WriteFailed(reasons.join("; ")),
        })
    }

    /// Connects to the first of `candidates` (tried in order) that is a writable primary, and
    /// follows the primary among them from then on ([`failover`]).
    pub async fn connect_any(
        candidates: Vec<PgConnectOptions>,
        config: &PgConfig,
    ) -> Result<Self, ConnectError> {
        let timeout_ms = config.statement_timeout.as_millis().to_string();
        let candidates = candidates
            .into_iter()
            // A session paused or cut off inside a transaction (holding the log's row lock)
            // is ended by the server after the same time, so that it cannot stall the cluster.
            .map(|o| {
                o.options([
                    ("statement_timeout", timeout_ms.as_str()),
                    ("idle_in_transaction_session_timeout", timeout_ms.as_str()),
                ])
            })
            .collect();
        let primary = failover::Primary::find(candidates, config.clone())
            .await
            .map_err(ConnectError::NoPrimary)?;
        MIGRATOR.run(&primary.pool()).await.map_err(|e| ConnectError::Store(e.into()))?;
        let resealed =
            subject_data::seal_old_rows(&primary.pool()).await.map_err(ConnectError::Store)?;
        if resealed > 0 {
            tracing::info!(rows = resealed, "sealed the trust evidence stored in clear");
        }
        let primary = Arc::new(primary);
        let appends = batch::spawn(primary.clone());
        let once_records = once::spawn(primary.clone());
        Ok(Self { primary, appends, once_records })
    }

    /// The current primary's connection pool (for tests and diagnostics).
    pub fn pool(&self) -> PgPool {
        self.primary.pool()
    }

    /// Runs a request and reports a connection-class failure, which starts a search for the
    /// primary; the error goes back to the caller either way.
    async fn watch<T>(&self, request: impl Future<Output = Result<T>>) -> Result<T> {
        let result = request.await;
        if let Err(e) = &result {
            self.primary.on_error(e);
        }
        result
    }

    /// Through the group commit of [`batch`], with its audit events.
    async fn append_kel_event_impl(
        &self,
        event: AcceptedEvent,
        audit: Vec<AuditEntry>,
    ) -> Result<AppendedEvent> {
        let req = KelAppend::prepare(event)?;
        check_audit_entries(&audit)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = batch::Job { req, audit, reply };
        self.appends.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Through the group commit of [`once`].
    async fn record_once_impl(
        &self,
        digest: Hash,
        keep_until_ms: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = once::Job { digest, keep_until_ms, now_ms, reply };
        self.once_records.send(job).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn put_checkpoint_impl(&self, note: String, fence: Option<Lease>) -> Result<bool> {
        let (size, root) = parse_checkpoint(&note)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        if let Some(lease) = &fence {
            write::check_lease(&mut w, lease).await?;
        }
        let out = write::put_checkpoint(&mut w, note, size, root).await?;
        w.commit().await?;
        Ok(out)
    }

    async fn acquire_lease_impl(
        &self,
        name: String,
        holder: String,
        ttl_ms: u64,
    ) -> Result<Option<Lease>> {
        check_lease_request(&name, &holder, ttl_ms)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        let out = write::acquire_lease(&mut w, &name, &holder, ttl_ms).await?;
        w.commit().await?;
        Ok(out)
    }

    async fn release_lease_impl(&self, lease: Lease) -> Result<bool> {
        let mut w = write::Write::begin(&self.pool()).await?;
        let out = write::release_lease(&mut w, &lease).await?;
        w.commit().await?;
        Ok(out)
    }

    async fn claim_meta_impl(&self, key: String, value: String) -> Result<String> {
        check_meta(&key, &value)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        let out = write::claim_meta(&mut w, &key, &value).await?;
        w.commit().await?;
        Ok(out)
    }

    async fn create_status_list_impl(
        &self,
        list: NewStatusList,
        audit: Vec<AuditEntry>,
    ) -> Result<()> {
        let bits = prepare_status_list(&list)?;
        check_audit_entries(&audit)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        write::create_status_list(&mut w, list, bits).await?;
        audit::insert_entries(w.connection(), &audit).await?;
        w.commit().await
    }

    async fn set_status_impl(
        &self,
        list_id: String,
        index: u64,
        value: u8,
        audit: Vec<AuditEntry>,
    ) -> Result<StatusUpdate> {
        check_list_id(&list_id)?;
        check_audit_entries(&audit)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        let out = write::set_status(&mut w, &list_id, index, value).await?;
        audit::insert_entries(w.connection(), &audit).await?;
        w.commit().await?;
        Ok(out)
    }

    async fn apply_status_update_impl(
        &self,
        update: NewSignedStatusUpdate,
        audit: Vec<AuditEntry>,
    ) -> Result<AppliedStatusUpdate> {
        check_status_update(&update)?;
        check_audit_entries(&audit)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        let out = write::apply_status_update(&mut w, update).await?;
        audit::insert_entries(w.connection(), &audit).await?;
        w.commit().await?;
        Ok(out)
    }

    async fn allocate_impl(
        &self,
        issuer: String,
        purpose: StatusPurpose,
        audit: Vec<AuditEntry>,
    ) -> Result<Option<StatusSlot>> {
        check_id("issuer", &issuer)?;
        check_audit_entries(&audit)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        let out = write::allocate(&mut w, &issuer, purpose).await?;
        audit::insert_entries(w.connection(), &audit).await?;
        w.commit().await?;
        Ok(out)
    }

    async fn set_trust_anchors_impl(
        &self,
        anchors: Vec<String>,
        meta: Option<(String, String)>,
        audit: Vec<AuditEntry>,
    ) -> Result<u64> {
        let (anchors, data_hash) = prepare_anchors(anchors, meta.as_ref())?;
        check_audit_entries(&audit)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        let out = write::set_anchors(&mut w, anchors, data_hash, meta).await?;
        audit::insert_entries(w.connection(), &audit).await?;
        w.commit().await?;
        Ok(out)
    }

    async fn append_evidence_impl(&self, evidence: NewEvidence) -> Result<u64> {
        let data_hash = prepare_evidence(&evidence)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        let out = write::append_evidence(&mut w, evidence, data_hash).await?;
        w.commit().await?;
        Ok(out)
    }

    async fn record_trust_evidence_impl(
        &self,
        evidence: NewTrustEvidence,
    ) -> Result<RecordedTrustEvidence> {
        check_trust_evidence(&evidence)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        let out = subject_data::record_trust_evidence(&mut w, evidence).await?;
        w.commit().await?;
        Ok(out)
    }

    async fn set_meta_impl(&self, key: String, value: String) -> Result<()> {
        check_meta(&key, &value)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        write::set_meta(&mut w, &key, &value).await?;
        w.commit().await
    }

    async fn write_role_bindings_impl(
        &self,
        kind: BindingWrite,
        bindings: Vec<RoleBinding>,
        audit: Vec<AuditEntry>,
    ) -> Result<Option<RoleBindingChange>> {
        check_bindings(&bindings)?;
        check_audit_entries(&audit)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        let out = write::role_bindings(&mut w, kind, bindings).await?;
        audit::insert_entries(w.connection(), &audit).await?;
        w.commit().await?;
        Ok(out)
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
                audit::insert_alone(&self.pool(), &audit).await?;
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
                check_audit_entries(&audit)?;
                let mut w = write::Write::begin(&self.pool()).await?;
                let out = subject_data::erase_subject(&mut w, subject).await?;
                audit::insert_entries(w.connection(), &audit).await?;
                w.commit().await?;
                AuditedOutcome::Erased(out)
            }
        })
    }

    async fn seal_audit_batch_impl(&self, max_events: u32) -> Result<Option<StoredAuditBatch>> {
        check_seal_size(max_events)?;
        let mut w = write::Write::begin(&self.pool()).await?;
        let out = audit::seal(&mut w, max_events).await?;
        if out.is_some() {
            w.commit().await?;
        }
        Ok(out)
    }

    async fn close_impl(&self) -> Result<()> {
        // Closing waits for the connections in use; a write in flight finishes first.
        self.primary.close().await;
        Ok(())
    }
}

impl Store for PgStore {
    fn append_kel_event(&self, event: AcceptedEvent) -> StoreFuture<'_, AppendedEvent> {
        Box::pin(self.watch(self.append_kel_event_impl(event, Vec::new())))
    }

    fn get_kel<'a>(&'a self, did: &'a str) -> StoreFuture<'a, Vec<StoredEvent>> {
        Box::pin(self.watch(async move { read::get_kel(&self.pool(), did).await }))
    }

    fn get_kel_event<'a>(
        &'a self,
        did: &'a str,
        sequence: u64,
    ) -> StoreFuture<'a, Option<StoredEvent>> {
        Box::pin(self.watch(async move { read::get_kel_event(&self.pool(), did, sequence).await }))
    }

    fn get_identity<'a>(&'a self, did: &'a str) -> StoreFuture<'a, Option<IdentityRecord>> {
        Box::pin(self.watch(async move { read::get_identity(&self.pool(), did).await }))
    }

    fn list_identities<'a>(
        &'a self,
        page_size: u32,
        page_token: Option<&'a str>,
    ) -> StoreFuture<'a, IdentityPage> {
        Box::pin(
            self.watch(
                async move { read::list_identities(&self.pool(), page_size, page_token).await },
            ),
        )
    }

    fn identity_count(&self) -> StoreFuture<'_, u64> {
        Box::pin(self.watch(async move { read::identity_count(&self.pool()).await }))
    }

    fn log_size(&self) -> StoreFuture<'_, u64> {
        Box::pin(self.watch(async move { read::log_size(&self.pool()).await }))
    }

    fn root_at(&self, size: u64) -> StoreFuture<'_, Hash> {
        Box::pin(self.watch(async move { read::root_at(&self.pool(), size).await }))
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> StoreFuture<'_, Vec<Hash>> {
        Box::pin(self.watch(async move { read::inclusion_proof(&self.pool(), index, size).await }))
    }

    fn consistency_proof(&self, old_size: u64, new_size: u64) -> StoreFuture<'_, Vec<Hash>> {
        Box::pin(
            self.watch(
                async move { read::consistency_proof(&self.pool(), old_size, new_size).await },
            ),
        )
    }

    fn get_entries(&self, start: u64, limit: u32) -> StoreFuture<'_, Vec<LogEntry>> {
        Box::pin(self.watch(async move { read::get_entries(&self.pool(), start, limit).await }))
    }

    fn put_checkpoint(&self, note: String) -> StoreFuture<'_, bool> {
        Box::pin(self.watch(self.put_checkpoint_impl(note, None)))
    }

    fn put_checkpoint_fenced(&self, note: String, lease: Lease) -> StoreFuture<'_, bool> {
        Box::pin(self.watch(self.put_checkpoint_impl(note, Some(lease))))
    }

    fn acquire_lease(
        &self,
        name: String,
        holder: String,
        ttl_ms: u64,
    ) -> StoreFuture<'_, Option<Lease>> {
        Box::pin(self.watch(self.acquire_lease_impl(name, holder, ttl_ms)))
    }

    fn release_lease(&self, lease: Lease) -> StoreFuture<'_, bool> {
        Box::pin(self.watch(self.release_lease_impl(lease)))
    }

    fn put_trust_snapshot_fenced(
        &self,
        computed_at_ms: i64,
        body: Vec<u8>,
        lease: Lease,
    ) -> StoreFuture<'_, u64> {
        Box::pin(self.watch(async move {
            check_trust_snapshot(computed_at_ms, &body)?;
            write::put_trust_snapshot(&self.pool(), computed_at_ms, body, &lease).await
        }))
    }

    fn trust_snapshot_revision(&self) -> StoreFuture<'_, Option<(u64, i64)>> {
        Box::pin(self.watch(async move { read::trust_snapshot_revision(&self.pool()).await }))
    }

    fn trust_snapshot(&self) -> StoreFuture<'_, Option<StoredTrustSnapshot>> {
        Box::pin(self.watch(async move { read::trust_snapshot(&self.pool()).await }))
    }

    fn claim_meta(&self, key: String, value: String) -> StoreFuture<'_, String> {
        Box::pin(self.watch(self.claim_meta_impl(key, value)))
    }

    fn record_once(&self, digest: Hash, keep_until_ms: i64, now_ms: i64) -> StoreFuture<'_, bool> {
        Box::pin(
            self.watch(async move { self.record_once_impl(digest, keep_until_ms, now_ms).await }),
        )
    }

    fn once_record_live(&self, digest: Hash, now_ms: i64) -> StoreFuture<'_, bool> {
        Box::pin(
            self.watch(async move { read::once_record_live(&self.pool(), digest, now_ms).await }),
        )
    }

    fn purge_once_records(&self, now_ms: i64, limit: u32) -> StoreFuture<'_, u64> {
        Box::pin(
            self.watch(async move { read::purge_once_records(&self.pool(), now_ms, limit).await }),
        )
    }

    fn latest_checkpoint(&self) -> StoreFuture<'_, Option<StoredCheckpoint>> {
        Box::pin(self.watch(async move { read::checkpoint(&self.pool(), None).await }))
    }

    fn checkpoint_at(&self, size: u64) -> StoreFuture<'_, Option<StoredCheckpoint>> {
        Box::pin(self.watch(async move { read::checkpoint(&self.pool(), Some(size)).await }))
    }

    fn create_status_list(&self, list: NewStatusList) -> StoreFuture<'_, ()> {
        Box::pin(self.watch(self.create_status_list_impl(list, Vec::new())))
    }

    fn set_status(&self, list_id: String, index: u64, value: u8) -> StoreFuture<'_, StatusUpdate> {
        Box::pin(self.watch(self.set_status_impl(list_id, index, value, Vec::new())))
    }

    fn apply_status_update(
        &self,
        update: NewSignedStatusUpdate,
    ) -> StoreFuture<'_, AppliedStatusUpdate> {
        Box::pin(self.watch(self.apply_status_update_impl(update, Vec::new())))
    }

    fn get_status_list<'a>(
        &'a self,
        list_id: &'a str,
    ) -> StoreFuture<'a, Option<StatusListRecord>> {
        Box::pin(self.watch(async move { read::get_status_list(&self.pool(), list_id).await }))
    }

    fn allocate_status_index(
        &self,
        issuer: String,
        purpose: StatusPurpose,
    ) -> StoreFuture<'_, Option<StatusSlot>> {
        Box::pin(self.watch(self.allocate_impl(issuer, purpose, Vec::new())))
    }

    fn set_trust_anchors(&self, anchors: Vec<String>) -> StoreFuture<'_, u64> {
        Box::pin(self.watch(self.set_trust_anchors_impl(anchors, None, Vec::new())))
    }

    fn find_leaf<'a>(&'a self, leaf_hash: &'a Hash) -> StoreFuture<'a, Option<u64>> {
        Box::pin(self.watch(async move { read::find_leaf(&self.pool(), leaf_hash).await }))
    }

    fn set_trust_anchors_with_meta(
        &self,
        anchors: Vec<String>,
        meta_key: String,
        meta_value: String,
    ) -> StoreFuture<'_, u64> {
        Box::pin(self.watch(self.set_trust_anchors_impl(
            anchors,
            Some((meta_key, meta_value)),
            Vec::new(),
        )))
    }

    fn list_trust_anchors(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(self.watch(async move { read::list_trust_anchors(&self.pool()).await }))
    }

    fn append_evidence(&self, evidence: NewEvidence) -> StoreFuture<'_, u64> {
        Box::pin(self.watch(self.append_evidence_impl(evidence)))
    }

    fn evidence_subjects<'a>(
        &'a self,
        evidence_type: &'a str,
        after: Option<&'a str>,
        limit: u32,
    ) -> StoreFuture<'a, Vec<String>> {
        Box::pin(self.watch(async move {
            read::evidence_subjects(&self.pool(), evidence_type, after, limit).await
        }))
    }

    fn record_trust_evidence(
        &self,
        evidence: NewTrustEvidence,
    ) -> StoreFuture<'_, RecordedTrustEvidence> {
        Box::pin(self.watch(self.record_trust_evidence_impl(evidence)))
    }

    fn list_trust_evidence<'a>(
        &'a self,
        filter: &'a TrustEvidenceFilter,
        page_size: u32,
        page_token: Option<&'a str>,
    ) -> StoreFuture<'a, TrustEvidencePage> {
        Box::pin(self.watch(async move {
            read::list_trust_evidence(&self.pool(), filter, page_size, page_token).await
        }))
    }

    fn scan_trust_evidence(
        &self,
        after_log_index: Option<u64>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<TrustEvidenceRecord>> {
        Box::pin(self.watch(async move {
            read::scan_trust_evidence(&self.pool(), after_log_index, limit).await
        }))
    }

    fn get_meta<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(self.watch(async move { read::get_meta(&self.pool(), key).await }))
    }

    fn set_meta(&self, key: String, value: String) -> StoreFuture<'_, ()> {
        Box::pin(self.watch(self.set_meta_impl(key, value)))
    }

    fn list_role_bindings(&self) -> StoreFuture<'_, RoleBindings> {
        Box::pin(self.watch(async move { read::list_role_bindings(&self.pool()).await }))
    }

    fn role_bindings_revision(&self) -> StoreFuture<'_, u64> {
        Box::pin(self.watch(async move { read::role_bindings_revision(&self.pool()).await }))
    }

    fn add_role_bindings(&self, bindings: Vec<RoleBinding>) -> StoreFuture<'_, RoleBindingChange> {
        Box::pin(self.watch(self.change_role_bindings_impl(
            BindingWrite::Add,
            bindings,
            Vec::new(),
        )))
    }

    fn remove_role_bindings(
        &self,
        bindings: Vec<RoleBinding>,
    ) -> StoreFuture<'_, RoleBindingChange> {
        Box::pin(self.watch(self.change_role_bindings_impl(
            BindingWrite::Remove,
            bindings,
            Vec::new(),
        )))
    }

    fn seed_role_bindings(
        &self,
        bindings: Vec<RoleBinding>,
    ) -> StoreFuture<'_, Option<RoleBindingChange>> {
        Box::pin(self.watch(self.write_role_bindings_impl(
            BindingWrite::Seed,
            bindings,
            Vec::new(),
        )))
    }

    fn stats(&self) -> StoreFuture<'_, StoreStats> {
        Box::pin(self.watch(async move { read::stats(&self.pool()).await }))
    }

    fn kel_change_feed(
        &self,
        catch_up_period: Duration,
    ) -> StoreFuture<'_, Option<Box<dyn KelChangeFeed>>> {
        let primary = self.primary.clone();
        Box::pin(async move {
            let feed = feed::PgKelFeed::new(primary, catch_up_period)?;
            Ok(Some(Box::new(feed) as Box<dyn KelChangeFeed>))
        })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(self.watch(self.close_impl()))
    }

    fn write_audited(
        &self,
        write: AuditedWrite,
        audit: Vec<AuditEntry>,
    ) -> StoreFuture<'_, AuditedOutcome> {
        Box::pin(self.watch(self.write_audited_impl(write, audit)))
    }

    fn seal_audit_batch(&self, max_events: u32) -> StoreFuture<'_, Option<StoredAuditBatch>> {
        Box::pin(self.watch(self.seal_audit_batch_impl(max_events)))
    }

    fn list_audit_events(&self, query: AuditQuery) -> StoreFuture<'_, Vec<StoredAuditEvent>> {
        Box::pin(self.watch(async move { audit::list_events(&self.pool(), query).await }))
    }

    fn list_audit_batches(&self, after: u64, limit: u32) -> StoreFuture<'_, Vec<StoredAuditBatch>> {
        Box::pin(self.watch(async move { audit::list_batches(&self.pool(), after, limit).await }))
    }

    fn expire_audit_batches(
        &self,
        sealed_before_ms: i64,
        max_batches: u32,
    ) -> StoreFuture<'_, u64> {
        Box::pin(self.watch(async move {
            check_expiry(max_batches)?;
            audit::expire(&self.pool(), sealed_before_ms, max_batches).await
        }))
    }
}
