//! The records the store reads and writes, and its limits.

use std::fmt;

use atp_core::kel::SignedEvent;
use atp_core::status_list::{BitstringStatusList, StatusPurpose};
use atp_core::tlog::Hash;

use atp_core::log_entry::{LeafKind, entry_leaf_hash};

/// The head of a key event log as a writer saw it: the sequence number and digest of its last
/// event. Appends are conditional on it (see [`crate::Store::append_kel_event`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KelHead {
    /// The sequence number (`s`) of the last event.
    pub sequence: u64,
    /// The digest of the last signed event (`mh(JCS({"event","sig"}))`, docs/protocol.md §B2.4).
    pub digest: String,
}

impl KelHead {
    /// The head of a verified log state.
    pub fn of(state: &atp_core::kel::KelState) -> Self {
        Self { sequence: state.sequence, digest: state.last_digest.clone() }
    }
}

impl fmt::Display for KelHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s={} digest={}", self.sequence, self.digest)
    }
}

/// The largest page of [`crate::Store::list_identities`]; larger requests are clamped.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The page size of [`crate::Store::list_identities`] when the caller asks for 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// The most log entries one [`crate::Store::get_entries`] call returns; larger requests are
/// clamped.
pub const MAX_ENTRIES_PER_CALL: u32 = 1000;

/// The most trust anchors in a set.
pub const MAX_TRUST_ANCHORS: usize = 1024;

/// The longest DID (or other identifier) the store accepts, in bytes.
pub const MAX_ID_BYTES: usize = 2048;

/// The longest status list id, in bytes; ids are `[A-Za-z0-9._-]+` so that they fit in a URL
/// path segment (`GET /status/{list-id}`).
pub const MAX_LIST_ID_BYTES: usize = 128;

/// The longest node-metadata key, in bytes.
pub const MAX_META_KEY_BYTES: usize = 128;

/// The longest node-metadata value, in bytes.
pub const MAX_META_VALUE_BYTES: usize = 64 * 1024;

/// The largest evidence body, in bytes.
pub const MAX_EVIDENCE_BYTES: usize = 64 * 1024;

/// The longest evidence type name, in bytes.
pub const MAX_EVIDENCE_TYPE_BYTES: usize = 128;

/// What a successful KEL append stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendedEvent {
    /// The DID.
    pub did: String,
    /// The event's sequence number, now the head of the log.
    pub sequence: u64,
    /// The event's digest, now the head digest.
    pub digest: String,
    /// The transparency-log index of the event's leaf.
    pub log_index: u64,
}

/// A stored key event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// The signed event, exactly as accepted.
    pub event: SignedEvent,
    /// Its sequence number.
    pub sequence: u64,
    /// Its digest.
    pub digest: String,
    /// The transparency-log index of its leaf.
    pub log_index: u64,
}

/// The summary row of one identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityRecord {
    /// The DID.
    pub did: String,
    /// The sequence number of the latest event.
    pub sequence: u64,
    /// The digest of the latest event.
    pub digest: String,
    /// Whether the log ends with a deactivation.
    pub deactivated: bool,
    /// The inception event's `ts`.
    pub created: String,
    /// The latest event's `ts`.
    pub updated: String,
    /// When the node stored the inception (Unix milliseconds, node clock).
    pub created_at_ms: i64,
    /// When the node stored the latest event (Unix milliseconds, node clock).
    pub updated_at_ms: i64,
}

impl IdentityRecord {
    /// The head of this identity's log.
    pub fn head(&self) -> KelHead {
        KelHead { sequence: self.sequence, digest: self.digest.clone() }
    }
}

/// One page of identities, in DID order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityPage {
    /// The identities on this page.
    pub identities: Vec<IdentityRecord>,
    /// The token for the next page; `None` on the last page. Treat it as opaque.
    pub next_page_token: Option<String>,
}

/// One transparency-log leaf as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The leaf index.
    pub index: u64,
    /// What kind of state change it records.
    pub kind: LeafKind,
    /// The hash of the recorded data (see [`atp_core::log_entry`]).
    pub data_hash: Hash,
    /// The RFC 9162 leaf hash, `leaf_hash(leaf_entry(kind, data_hash))`.
    pub leaf_hash: Hash,
    /// Where the data lives in the store (`did:atp:…?versionId=3`, `list-id#index`, …); a
    /// pointer for the node, not part of the hashed leaf, and erasable.
    pub reference: Option<String>,
    /// When the leaf was appended (Unix milliseconds, node clock).
    pub created_at_ms: i64,
}

impl LogEntry {
    /// The leaf entry bytes (the input of the leaf hash).
    pub fn entry_bytes(&self) -> Vec<u8> {
        atp_core::log_entry::leaf_entry(self.kind, &self.data_hash)
    }

    /// Whether the stored leaf hash matches the kind and data hash.
    pub fn is_consistent(&self) -> bool {
        entry_leaf_hash(self.kind, &self.data_hash) == self.leaf_hash
    }
}

/// A stored signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The tree size it commits to.
    pub size: u64,
    /// The root hash it commits to.
    pub root_hash: Hash,
    /// The full signed note (C2SP signed-note text).
    pub note: String,
    /// When it was stored (Unix milliseconds, node clock).
    pub created_at_ms: i64,
}

/// The shortest lease a holder may ask for.
pub const MIN_LEASE_TTL_MS: u64 = 100;
/// The longest lease a holder may ask for.
pub const MAX_LEASE_TTL_MS: u64 = 3_600_000;

/// A lease on a singleton job (checkpoint signing, say), held by one process at a time and
/// valid until a time of the database's clock. Each change of holder, and each take-over of an
/// expired lease, increments the epoch: a write fenced by a lease
/// ([`crate::Store::put_checkpoint_fenced`]) is refused unless its holder and epoch are still
/// the lease's and the lease has not expired, so a paused ex-holder cannot write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The job's name.
    pub name: String,
    /// Who holds it (a process, not a node identity: the nodes of a cluster share one).
    pub holder: String,
    /// Incremented by every change of holder or take-over after expiry; starts at 1.
    pub epoch: u64,
    /// Until when it is valid (Unix milliseconds, the database's clock).
    pub valid_until_ms: i64,
}

/// The largest trust snapshot a store keeps, in bytes (the layout's own limit).
pub const MAX_TRUST_SNAPSHOT_BYTES: usize = atp_core::trust_snapshot::MAX_SNAPSHOT_BYTES;

/// The trust snapshot that the one node of a cluster that computes trust stored for the others
/// (docs/ha.md, "Trust recomputation").
#[derive(Clone, PartialEq, Eq)]
pub struct StoredTrustSnapshot {
    /// 1 for the first snapshot stored, then one more for each.
    pub revision: u64,
    /// When it was computed (Unix milliseconds, the computing node's clock).
    pub computed_at_ms: i64,
    /// The encoded snapshot (`atp_core::trust_snapshot`), unparsed.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for StoredTrustSnapshot {
    // The body is up to hundreds of megabytes: never printed whole.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTrustSnapshot")
            .field("revision", &self.revision)
            .field("computed_at_ms", &self.computed_at_ms)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// A status list to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewStatusList {
    /// The list id (`[A-Za-z0-9._-]`, 1 to [`MAX_LIST_ID_BYTES`] bytes), unique in the store.
    pub list_id: String,
    /// The DID of the issuer that controls the list.
    pub issuer: String,
    /// What the list records.
    pub purpose: StatusPurpose,
    /// Bits per entry (1 to 8).
    pub status_size: u8,
    /// Number of entries (at least `atp_core::status_list::MIN_ENTRIES`).
    pub entries: u64,
    /// Whether [`crate::Store::allocate_status_index`] hands out its indices (the node's own
    /// lists); lists of external issuers are not allocatable.
    pub allocatable: bool,
}

/// A stored status list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusListRecord {
    /// The list id.
    pub list_id: String,
    /// The issuer DID.
    pub issuer: String,
    /// The purpose.
    pub purpose: StatusPurpose,
    /// The bitstring (its status size and entry count included).
    pub list: BitstringStatusList,
    /// Incremented by each change; 0 for a new (all-zero) list.
    pub version: u64,
    /// Whether indices are allocated from it.
    pub allocatable: bool,
    /// The next index the allocator hands out.
    pub next_index: u64,
    /// Creation time (Unix milliseconds, node clock).
    pub created_at_ms: i64,
    /// Time of the latest change (Unix milliseconds, node clock).
    pub updated_at_ms: i64,
}

/// The result of [`crate::Store::set_status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The list version after the call.
    pub version: u64,
    /// The entry's value before the call.
    pub previous: u8,
    /// The log index of the change's leaf; `None` when the entry already had the value (no
    /// change, nothing logged).
    pub log_index: Option<u64>,
}

/// The most changes one signed status-list update may carry
/// (`atp_core::status_update::MAX_CHANGES`).
pub const MAX_STATUS_UPDATE_CHANGES: usize = atp_core::status_update::MAX_CHANGES;

/// The largest signed status-list update, in bytes
/// (`atp_core::status_update::MAX_UPDATE_BYTES`).
pub const MAX_STATUS_UPDATE_BYTES: usize = atp_core::status_update::MAX_UPDATE_BYTES;

/// An external issuer's signed status-list update, already parsed and verified by the caller,
/// for [`crate::Store::apply_status_update`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSignedStatusUpdate {
    /// The list the update changes.
    pub list_id: String,
    /// The issuer named in the update; must be the list's issuer.
    pub issuer: String,
    /// The purpose named in the update; must be the list's purpose.
    pub purpose: StatusPurpose,
    /// Must be greater than the list's version; becomes the list's version.
    pub update_seq: u64,
    /// `(index, value)` changes, applied all or none.
    pub changes: Vec<(u64, u8)>,
    /// The signed update bytes, kept so that the logged hash can be re-derived.
    pub update: Vec<u8>,
    /// The issuer's signature over `update`.
    pub signature: Vec<u8>,
}

/// The result of [`crate::Store::apply_status_update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppliedStatusUpdate {
    /// The list version after the update: the update's `update_seq`.
    pub version: u64,
    /// How many entries changed value.
    pub changed: u64,
    /// The log index of the update's `status-update` leaf.
    pub log_index: u64,
}

/// An allocated status list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSlot {
    /// The list.
    pub list_id: String,
    /// The entry index, now reserved for one credential.
    pub index: u64,
}

/// A piece of trust evidence to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvidence {
    /// The DID the evidence is about.
    pub subject: String,
    /// Its type (for example `kel-fork`), 1 to [`MAX_EVIDENCE_TYPE_BYTES`] bytes.
    pub evidence_type: String,
    /// The evidence itself (signed bytes); at most [`MAX_EVIDENCE_BYTES`].
    pub body: Vec<u8>,
}

/// The largest signed trust evidence JSON the store accepts, in bytes.
pub const MAX_TRUST_EVIDENCE_BYTES: usize = 64 * 1024;

/// Signed trust evidence to record with [`crate::Store::record_trust_evidence`], already parsed
/// and verified by the caller (the store does not verify signatures).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTrustEvidence {
    /// `SHA-256(JCS(body))`: the evidence's identity and the `data_hash` of its `evidence` leaf.
    pub content_hash: Hash,
    /// The kind (`Endorsement`, `InteractionReceipt`, `IncidentReport`), 1 to
    /// [`MAX_EVIDENCE_TYPE_BYTES`] bytes.
    pub kind: String,
    /// The issuer's DID.
    pub issuer: String,
    /// The subject's DID.
    pub subject: String,
    /// The body's `created`, Unix milliseconds.
    pub created_ms: i64,
    /// The signed evidence as submitted (UTF-8 JSON), at most [`MAX_TRUST_EVIDENCE_BYTES`].
    pub evidence_json: String,
}

/// The result of [`crate::Store::record_trust_evidence`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedTrustEvidence {
    /// The index of the evidence's `evidence` leaf (for a duplicate: the original one).
    pub log_index: u64,
    /// True when evidence with the same content hash was already stored; nothing was written.
    pub duplicate: bool,
}

/// One stored piece of signed trust evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustEvidenceRecord {
    /// The index of its `evidence` leaf.
    pub log_index: u64,
    /// `SHA-256(JCS(body))`.
    pub content_hash: Hash,
    /// The kind.
    pub kind: String,
    /// The issuer's DID.
    pub issuer: String,
    /// The subject's DID.
    pub subject: String,
    /// The body's `created`, Unix milliseconds.
    pub created_ms: i64,
    /// The signed evidence as submitted.
    pub evidence_json: String,
    /// When the node stored it (Unix milliseconds, node clock).
    pub stored_at_ms: i64,
}

/// The result of erasing a subject ([`crate::AuditedWrite::EraseSubject`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectErasure {
    /// The erased subject's DID.
    pub subject: String,
    /// When it was erased (node clock, Unix milliseconds).
    pub erased_at_ms: i64,
    /// How many pieces of trust evidence about it were destroyed.
    pub evidence_erased: u64,
    /// The index of the `erasure` log leaf.
    pub log_index: u64,
    /// True when the subject had already been erased: nothing was done, and the fields are
    /// those of the first erasure.
    pub already_erased: bool,
}

/// Filters of [`crate::Store::list_trust_evidence`]; every given filter must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustEvidenceFilter {
    /// Only evidence about this DID.
    pub subject: Option<String>,
    /// Only evidence by this DID.
    pub issuer: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
}

/// One page of trust evidence, newest (highest log index) first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustEvidencePage {
    /// The evidence on this page.
    pub evidence: Vec<TrustEvidenceRecord>,
    /// The token for the next page; `None` on the last page. Treat it as opaque.
    pub next_page_token: Option<String>,
}

/// Row counts and the log size, for node information and for tests that check that a
/// rejected write stored nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Identities.
    pub identities: u64,
    /// Identities whose log ends with a deactivation (included in `identities`).
    pub deactivated_identities: u64,
    /// Key events.
    pub kel_events: u64,
    /// Transparency-log leaves.
    pub log_size: u64,
    /// Stored tree nodes (all levels).
    pub tree_nodes: u64,
    /// Checkpoints.
    pub checkpoints: u64,
    /// Status lists.
    pub status_lists: u64,
    /// Trust anchors.
    pub trust_anchors: u64,
    /// Evidence records.
    pub evidence: u64,
    /// Signed trust evidence records ([`crate::Store::record_trust_evidence`]).
    pub trust_evidence: u64,
    /// Node metadata keys.
    pub meta_keys: u64,
}

/// The longest subject, role or domain of a role binding, in bytes.
pub const MAX_ROLE_BINDING_FIELD_BYTES: usize = 256;

/// The most role bindings one write adds or removes, and the most the store keeps.
pub const MAX_ROLE_BINDINGS: usize = 10_000;

/// A role binding of the RBAC policy: `subject` has `role` in `domain`. The store checks the
/// shape only (1 to [`MAX_ROLE_BINDING_FIELD_BYTES`] bytes, no comma, no control character, no
/// surrounding space, so that every binding is one CSV policy line); what a valid subject, role
/// or domain is, the RBAC crate decides before writing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleBinding {
    /// `group:<name>` or `user:<sub>`.
    pub subject: String,
    /// A role, e.g. `role:operator`.
    pub role: String,
    /// A tenant, or `*` for every tenant.
    pub domain: String,
}

/// The RBAC policy's bindings and revision, read in one snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleBindings {
    /// 0 until the first change; incremented by every write that changes a binding.
    pub revision: u64,
    /// Every binding, sorted by (subject, role, domain).
    pub bindings: Vec<RoleBinding>,
}

/// The result of adding or removing role bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleBindingChange {
    /// How many bindings were added (or removed); those that already existed (or did not)
    /// count 0.
    pub changed: u64,
    /// The policy's revision after the write (unchanged when `changed` is 0).
    pub revision: u64,
}
