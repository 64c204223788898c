//! Storage for the ATP node: the [`Store`] trait and its embedded SQLite implementation,
//! [`SqliteStore`].
//!
//! The store keeps what a node must not lose: the key event logs of the identities it serves,
//! the transparency log (every accepted state change, as a hash, docs/design.md §8) with the hashes
//! of its complete subtrees and its signed checkpoints, credential status lists, trust anchors,
//! evidence and node metadata. Every state change and its log leaf commit in one transaction,
//! and an acknowledged write is durable.
//!
//! - [`store`]: the [`Store`] trait, object-safe (`Arc<dyn Store>`).
//! - [`sqlite`]: [`SqliteStore`], WAL + `synchronous=FULL`, one writer task with group commit.
//! - what a log leaf commits to (kind + data hash) is protocol: [`atp_core::log_entry`].
//! - [`model`]: the records and limits.
//! - [`change_feed`]: how the nodes sharing a store learn of each other's key event appends.
//!
//! The SQL is kept portable so that a PostgreSQL implementation (for HA) can share the schema
//! and queries; see `migrations/0001_initial.sql` for the few type differences.
#![forbid(unsafe_code)]

pub mod audit;
pub mod backend;
pub mod change_feed;
pub mod error;
pub mod model;
pub mod sqlite;
pub mod store;
mod tree;

pub use atp_core::log_entry::LeafKind;
pub use audit::{
    AuditEntry, AuditQuery, AuditedOutcome, AuditedWrite, StoredAuditBatch, StoredAuditEvent,
};
pub use change_feed::{KelChange, KelChangeFeed, MIN_CATCH_UP_PERIOD};
pub use error::{Result, StoreError};
pub use model::{
    AppendedEvent, AppliedStatusUpdate, DEFAULT_PAGE_SIZE, IdentityPage, IdentityRecord, KelHead,
    Lease, LogEntry, MAX_ENTRIES_PER_CALL, MAX_LEASE_TTL_MS, MAX_PAGE_SIZE, MAX_TRUST_ANCHORS,
    MIN_LEASE_TTL_MS, NewEvidence, NewSignedStatusUpdate, NewStatusList, StatusListRecord,
    StatusSlot, StatusUpdate, StoreStats, StoredCheckpoint, StoredEvent,
};
pub use model::{
    MAX_ROLE_BINDING_FIELD_BYTES, MAX_ROLE_BINDINGS, RoleBinding, RoleBindingChange, RoleBindings,
};
pub use model::{
    MAX_TRUST_EVIDENCE_BYTES, NewTrustEvidence, RecordedTrustEvidence, SubjectErasure,
    TrustEvidenceFilter, TrustEvidencePage, TrustEvidenceRecord,
};
pub use model::{MAX_TRUST_SNAPSHOT_BYTES, StoredTrustSnapshot};
pub use sqlite::{DB_FILE_NAME, SqliteConfig, SqliteStore};
pub use store::{Store, StoreFuture};
