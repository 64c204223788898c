//! The [`Store`] trait: everything the node persists.

use std::future::Future;
use std::pin::Pin;

use atp_core::accepted::AcceptedEvent;
use atp_core::status_list::StatusPurpose;
use atp_core::tlog::Hash;

use crate::audit::{
    AuditEntry, AuditQuery, AuditedOutcome, AuditedWrite, StoredAuditBatch, StoredAuditEvent,
};
use crate::change_feed::KelChangeFeed;
use crate::error::Result;
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

/// The future every [`Store`] method returns: boxed, `Send`, borrowing the store and the
/// arguments for `'a`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The node's persistent state: key event logs, the transparency log and its checkpoints,
/// credential status lists, trust anchors, evidence and node metadata.
///
/// # Why boxed futures
///
/// The server holds its store as `Arc<dyn Store>`, so that SQLite and (next) PostgreSQL
/// implementations, and test doubles, are chosen at run time without making every service
/// generic. A trait with native `async fn` (Rust 2024) is not dyn-compatible, and the
/// `async_trait` macro adds a dependency to produce exactly this signature. Each method
/// therefore returns a [`StoreFuture`]; implementations write ordinary `async fn`s and wrap
/// them in `Box::pin`. The one allocation per call is noise next to a database round trip.
///
/// # Contract
///
/// - **Atomic.** Every write is one transaction together with its transparency-log leaf: it
///   happens entirely or not at all, and a write that returns an error stored nothing.
/// - **Durable.** A write that returned `Ok` survives a crash of the process or the machine.
///   A caller that drops the future after its request was queued does not cancel the write:
///   it may still commit (re-read to find out).
/// - **Append-only log.** Leaves get consecutive indices in the order their transactions
///   commit; nothing in the log is ever rewritten.
/// - **No verification here.** The store checks no protocol rule: the caller has atp-core accept
///   an event against the head it read, and the store appends the accepted event only while that
///   head is still the stored one ([`Store::append_kel_event`]), atomically.
pub trait Store: Send + Sync {
    // --- Key event logs ---------------------------------------------------------------------

    /// Appends an event that `atp_core::kel::KeyEventLog::accept` accepted, if and only if the
    /// stored head of its DID is still the head it was accepted against
    /// ([`AcceptedEvent::extends`]; `None`: the DID must not exist yet).
    ///
    /// In one transaction: checks the head, stores the event's canonical bytes as core computed
    /// them, updates the identity row (sequence, digest, deactivated, updated time) and appends a
    /// `kel` leaf with core's data hash to the transparency log. A writer that lost a race gets
    /// [`crate::StoreError::Conflict`] with the head it found, re-reads and accepts again: two
    /// writers can never fork a log. The store re-checks no protocol rule: atp-core is the one
    /// judge of an append, and an [`AcceptedEvent`] can only come from it.
    fn append_kel_event(&self, event: AcceptedEvent) -> StoreFuture<'_, AppendedEvent>;

    /// The whole log of `did`, in order; empty for an unknown DID.
    fn get_kel<'a>(&'a self, did: &'a str) -> StoreFuture<'a, Vec<StoredEvent>>;

    /// Event `sequence` of `did`'s log.
    fn get_kel_event<'a>(
        &'a self,
        did: &'a str,
        sequence: u64,
    ) -> StoreFuture<'a, Option<StoredEvent>>;

    /// The summary row of `did`.
    fn get_identity<'a>(&'a self, did: &'a str) -> StoreFuture<'a, Option<IdentityRecord>>;

    /// Identities in DID order, `page_size` at a time (0: [`crate::DEFAULT_PAGE_SIZE`];
    /// clamped to [`crate::MAX_PAGE_SIZE`]), after `page_token` (from the previous page).
    /// Keyset pagination: a page costs the same however deep it is.
    fn list_identities<'a>(
        &'a self,
        page_size: u32,
        page_token: Option<&'a str>,
    ) -> StoreFuture<'a, IdentityPage>;

    /// The number of identities.
    fn identity_count(&self) -> StoreFuture<'_, u64>;

    // --- Transparency log -------------------------------------------------------------------

    /// The number of leaves.
    fn log_size(&self) -> StoreFuture<'_, u64>;

    /// The RFC 9162 root of the first `size` leaves (`size` ≤ [`Store::log_size`]).
    fn root_at(&self, size: u64) -> StoreFuture<'_, Hash>;

    /// The inclusion proof of leaf `index` in the tree of the first `size` leaves.
    fn inclusion_proof(&self, index: u64, size: u64) -> StoreFuture<'_, Vec<Hash>>;

    /// The consistency proof between the trees of the first `old_size` and `new_size` leaves.
    fn consistency_proof(&self, old_size: u64, new_size: u64) -> StoreFuture<'_, Vec<Hash>>;

    /// Up to `limit` leaves from index `start` (clamped to [`crate::MAX_ENTRIES_PER_CALL`]).
    fn get_entries(&self, start: u64, limit: u32) -> StoreFuture<'_, Vec<LogEntry>>;

    // --- Checkpoints ------------------------------------------------------------------------

    /// Stores a signed checkpoint note (C2SP signed-note with a tlog-checkpoint body). The
    /// store parses it and checks that its size is within the log and its root is the log's
    /// root at that size; the caller has signed it. Returns `false` (and keeps the first) when
    /// a checkpoint of that size is already stored.
    fn put_checkpoint(&self, note: String) -> StoreFuture<'_, bool>;

    /// As [`Store::put_checkpoint`], in a transaction that first checks `lease` is still the
    /// stored lease of its name and unexpired ([`crate::StoreError::LeaseLost`] otherwise, and
    /// nothing is stored): how the one checkpoint signer of a cluster publishes.
    fn put_checkpoint_fenced(&self, note: String, lease: Lease) -> StoreFuture<'_, bool>;

    /// The checkpoint with the largest size.
    fn latest_checkpoint(&self) -> StoreFuture<'_, Option<StoredCheckpoint>>;

    /// The checkpoint of exactly `size` leaves.
    fn checkpoint_at(&self, size: u64) -> StoreFuture<'_, Option<StoredCheckpoint>>;

    // --- Credential status ------------------------------------------------------------------

    /// Creates an all-zero status list (version 0).
    fn create_status_list(&self, list: NewStatusList) -> StoreFuture<'_, ()>;

    /// Sets entry `index` of `list_id` to `value`, in one transaction with a `status` log
    /// leaf. Setting the value an entry already has changes and logs nothing.
    fn set_status(&self, list_id: String, index: u64, value: u8) -> StoreFuture<'_, StatusUpdate>;

    /// Applies an external issuer's signed update to `update.list_id` as a whole, in one
    /// transaction with one `status-update` log leaf and the stored update bytes. Refuses, and
    /// changes nothing, when the issuer or purpose is not the list's, `update_seq` is not above
    /// the list's version ([`crate::StoreError::StatusUpdateStale`]), an index or value is out
    /// of range, or a change clears a revoked entry
    /// ([`crate::StoreError::StatusRevocationFinal`]).
    fn apply_status_update(
        &self,
        update: NewSignedStatusUpdate,
    ) -> StoreFuture<'_, AppliedStatusUpdate>;

    /// A status list with its bitstring.
    fn get_status_list<'a>(&'a self, list_id: &'a str)
    -> StoreFuture<'a, Option<StatusListRecord>>;

    /// Reserves the next free index of an allocatable list of `issuer` with `purpose` (oldest
    /// list first). `None` when every such list is full (or there is none): the caller
    /// creates a new list and asks again.
    fn allocate_status_index(
        &self,
        issuer: String,
        purpose: StatusPurpose,
    ) -> StoreFuture<'_, Option<StatusSlot>>;

    // --- Trust anchors ----------------------------------------------------------------------

    /// Replaces the trust-anchor set (de-duplicated) with one `anchors` log leaf; returns the
    /// leaf index.
    fn set_trust_anchors(&self, anchors: Vec<String>) -> StoreFuture<'_, u64>;

    /// The index of the first leaf whose leaf hash is `leaf_hash`, through an index (no scan).
    fn find_leaf<'a>(&'a self, leaf_hash: &'a Hash) -> StoreFuture<'a, Option<u64>>;

    /// As [`Store::set_trust_anchors`], and sets node metadata `meta_key` to `meta_value` in
    /// the same transaction (for example the anchor set's revision and notes), so that a crash
    /// can never leave the two apart.
    fn set_trust_anchors_with_meta(
        &self,
        anchors: Vec<String>,
        meta_key: String,
        meta_value: String,
    ) -> StoreFuture<'_, u64>;

    /// The trust anchors, sorted.
    fn list_trust_anchors(&self) -> StoreFuture<'_, Vec<String>>;

    // --- Evidence ---------------------------------------------------------------------------

    /// Records a piece of evidence (for example a KEL fork, docs/protocol.md §B2.7) with an
    /// `evidence` log leaf; returns the leaf index.
    fn append_evidence(&self, evidence: NewEvidence) -> StoreFuture<'_, u64>;

    /// The distinct subjects of the evidence of type `evidence_type` (for example every DID
    /// with a recorded KEL fork), in byte order after `after` (`None`: from the start), at most
    /// `limit` of them (clamped to [`crate::MAX_ENTRIES_PER_CALL`]).
    fn evidence_subjects<'a>(
        &'a self,
        evidence_type: &'a str,
        after: Option<&'a str>,
        limit: u32,
    ) -> StoreFuture<'a, Vec<String>>;

    /// Records verified, signed trust evidence with an `evidence` log leaf whose data hash is
    /// its content hash, in one transaction. Idempotent: when evidence with the same content
    /// hash is already stored, nothing is written and the original leaf is returned with
    /// `duplicate` = true.
    fn record_trust_evidence(
        &self,
        evidence: NewTrustEvidence,
    ) -> StoreFuture<'_, RecordedTrustEvidence>;

    /// Signed trust evidence, newest first, filtered by `filter`, `page_size` at a time (0:
    /// [`crate::DEFAULT_PAGE_SIZE`]; clamped to [`crate::MAX_PAGE_SIZE`]), after `page_token`
    /// (from the previous page; a malformed token is [`crate::StoreError::InvalidArgument`]).
    /// Keyset pagination on the log index.
    fn list_trust_evidence<'a>(
        &'a self,
        filter: &'a TrustEvidenceFilter,
        page_size: u32,
        page_token: Option<&'a str>,
    ) -> StoreFuture<'a, TrustEvidencePage>;

    /// Up to `limit` pieces of signed trust evidence in log order, after log index
    /// `after_log_index` (`None`: from the start; `limit` clamped to
    /// [`crate::MAX_ENTRIES_PER_CALL`]): how the trust computation reads all evidence.
    fn scan_trust_evidence(
        &self,
        after_log_index: Option<u64>,
        limit: u32,
    ) -> StoreFuture<'_, Vec<TrustEvidenceRecord>>;

    // --- Sharing the store -------------------------------------------------------------------

    /// The key event log changes of every writer of the store, for a store that several
    /// processes share: a feed that proves it has caught up at least every `catch_up_period`
    /// (at least [`crate::MIN_CATCH_UP_PERIOD`]). `None` for a store this process alone writes,
    /// where its own appends are all the changes there are.
    fn kel_change_feed(
        &self,
        catch_up_period: std::time::Duration,
    ) -> StoreFuture<'_, Option<Box<dyn KelChangeFeed>>>;

    // --- Leases ---------------------------------------------------------------------------

    /// Takes or renews lease `name` for `holder` for `ttl_ms`, by the database's clock (see
    /// [`Lease`]): `None` while another holder's lease is valid.
    fn acquire_lease(
        &self,
        name: String,
        holder: String,
        ttl_ms: u64,
    ) -> StoreFuture<'_, Option<Lease>>;

    /// Ends `lease` now if it is still the stored one (so that another holder need not wait for
    /// it to expire); returns whether it was.
    fn release_lease(&self, lease: Lease) -> StoreFuture<'_, bool>;

    // --- One-time values -------------------------------------------------------------------

    /// Records `digest` (of a one-time value: an envelope nonce, a presentation challenge) as
    /// seen until `keep_until_ms`, unless a record of it is still live at `now_ms`; returns
    /// whether this call recorded it (`false`: a replay). One statement, atomic: of two nodes
    /// recording the same digest at once, exactly one gets `true`.
    fn record_once(&self, digest: Hash, keep_until_ms: i64, now_ms: i64) -> StoreFuture<'_, bool>;

    /// Whether a record of `digest` is live at `now_ms` (kept until `now_ms` or later), without
    /// recording anything: a value that one node recorded as issued (a session challenge) is
    /// recognised by every other.
    fn once_record_live(&self, digest: Hash, now_ms: i64) -> StoreFuture<'_, bool>;

    /// Deletes up to `limit` records that expired before `now_ms` (clamped to
    /// [`crate::MAX_ENTRIES_PER_CALL`]); returns how many.
    fn purge_once_records(&self, now_ms: i64, limit: u32) -> StoreFuture<'_, u64>;

    // --- Trust snapshot ---------------------------------------------------------------------

    /// Stores `body`, an encoded trust snapshot (`atp_core::trust_snapshot`, 1 to
    /// [`crate::MAX_TRUST_SNAPSHOT_BYTES`] bytes) computed at `computed_at_ms`, as the current
    /// one, in a transaction that first checks that `lease` is still the stored lease of its
    /// name and unexpired ([`crate::StoreError::LeaseLost`] otherwise, and nothing is stored):
    /// how the one node of a cluster that computes trust hands its result to the others.
    /// Returns the new revision (1 for the first snapshot, then one more each time). The store
    /// keeps the bytes as they are; the node that reads them parses them.
    fn put_trust_snapshot_fenced(
        &self,
        computed_at_ms: i64,
        body: Vec<u8>,
        lease: Lease,
    ) -> StoreFuture<'_, u64>;

    /// The stored trust snapshot's revision and computation time, without its body (one point
    /// read): `None` before the first. Nodes compare the revision with the one they loaded.
    fn trust_snapshot_revision(&self) -> StoreFuture<'_, Option<(u64, i64)>>;

    /// The stored trust snapshot, if any.
    fn trust_snapshot(&self) -> StoreFuture<'_, Option<StoredTrustSnapshot>>;

    // --- Node metadata ----------------------------------------------------------------------

    /// A node metadata value (for example the node's DID).
    fn get_meta<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>>;

    /// Sets a node metadata value (not logged: this is node configuration, not protocol
    /// state).
    fn set_meta(&self, key: String, value: String) -> StoreFuture<'_, ()>;

    /// Sets node metadata `key` to `value` only if it has no value, in one transaction, and
    /// returns the value it has afterwards: how nodes sharing a database agree on a value the
    /// first of them sets (the cluster's identity, say).
    fn claim_meta(&self, key: String, value: String) -> StoreFuture<'_, String>;

    // --- RBAC policy ------------------------------------------------------------------------

    /// The role bindings of the RBAC policy and their revision, in one snapshot.
    fn list_role_bindings(&self) -> StoreFuture<'_, RoleBindings>;

    /// The RBAC policy's revision (one point read): 0 before the first write, then
    /// incremented by every write that changes a binding. Nodes compare it with the revision
    /// they loaded to notice changes made by any node on the same database.
    fn role_bindings_revision(&self) -> StoreFuture<'_, u64>;

    /// Adds role bindings in one transaction (through the single writer); those that exist
    /// already are skipped (idempotent). A binding of the wrong shape
    /// ([`crate::StoreError::InvalidArgument`]) stores nothing of the write.
    fn add_role_bindings(&self, bindings: Vec<RoleBinding>) -> StoreFuture<'_, RoleBindingChange>;

    /// Removes role bindings in one transaction; those that do not exist are skipped
    /// (idempotent).
    fn remove_role_bindings(
        &self,
        bindings: Vec<RoleBinding>,
    ) -> StoreFuture<'_, RoleBindingChange>;

    /// Adds `bindings` only if the policy was never written (revision 0), in one transaction:
    /// how a node seeds the store from its configuration without overriding a policy that an
    /// operator (or another node) already wrote. `None` when the policy had been written.
    fn seed_role_bindings(
        &self,
        bindings: Vec<RoleBinding>,
    ) -> StoreFuture<'_, Option<RoleBindingChange>>;

    // --- Housekeeping -----------------------------------------------------------------------

    /// Row counts and the log size.
    fn stats(&self) -> StoreFuture<'_, StoreStats>;

    /// Finishes the queued writes, then refuses new ones ([`crate::StoreError::Closed`]) and
    /// releases the database. Idempotent.
    fn close(&self) -> StoreFuture<'_, ()>;

    // --- The audit trail (docs/audit.md) ---

    /// Makes `write` and stores the `audit` events in one transaction: both, or neither. A
    /// write that fails on its own stores no event either, and an event that cannot be stored
    /// fails the write. At most [`crate::audit::MAX_AUDIT_ENTRIES_PER_WRITE`] events.
    fn write_audited(
        &self,
        write: AuditedWrite,
        audit: Vec<AuditEntry>,
    ) -> StoreFuture<'_, AuditedOutcome>;

    /// Seals the oldest unsealed events (at most `max_events`, 1 to
    /// [`crate::audit::MAX_AUDIT_BATCH`]) into the next batch and appends its `audit-batch`
    /// leaf, in one transaction. `None` when every event is sealed. Writers on one store are
    /// serialised by the log's lock, so two nodes never seal the same event.
    fn seal_audit_batch(&self, max_events: u32) -> StoreFuture<'_, Option<StoredAuditBatch>>;

    /// The events `query` selects, in sequence order.
    fn list_audit_events(&self, query: AuditQuery) -> StoreFuture<'_, Vec<StoredAuditEvent>>;

    /// The sealed batches after number `after`, at most `limit`, in order.
    fn list_audit_batches(&self, after: u64, limit: u32) -> StoreFuture<'_, Vec<StoredAuditBatch>>;

    /// Retention: deletes the events of the oldest batches sealed before `sealed_before_ms`, at
    /// most `max_batches` of them (1 to [`crate::audit::MAX_EXPIRE_BATCHES`]), in one
    /// transaction, and marks those batches expired; the batch rows stay, so what remains still
    /// verifies. Returns how many batches expired.
    fn expire_audit_batches(&self, sealed_before_ms: i64, max_batches: u32)
    -> StoreFuture<'_, u64>;
}
