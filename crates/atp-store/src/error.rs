//! [`StoreError`], the crate's single error type.

use std::fmt;
use std::path::PathBuf;

use atp_core::CoreError;

use crate::model::KelHead;

/// Formats an optional head for error messages.
struct ShowHead<'a>(&'a Option<KelHead>);

impl fmt::Display for ShowHead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(h) => h.fmt(f),
            None => f.write_str("no log"),
        }
    }
}

/// Everything that can go wrong in the store.
///
/// Each variant has a stable, upper-snake-case code ([`StoreError::code`]) for APIs and logs.
/// A write that returns an error has stored nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A conditional KEL append lost a race: the stored head is not the one the caller verified
    /// the event against. The caller re-reads the log and re-verifies; two writers can never
    /// fork a log.
    #[error("KEL head of {did} is {}, not the expected {}", ShowHead(.found), ShowHead(.expected))]
    Conflict {
        /// The DID whose log was appended to.
        did: String,
        /// The head the caller expected (`None`: the DID must not exist yet).
        expected: Option<KelHead>,
        /// The head found in the store (`None`: no log for this DID, or, when a unique
        /// constraint caught the race instead of the head check, not known).
        found: Option<KelHead>,
    },
    /// An object with this identifier already exists.
    #[error("{what} {id} already exists")]
    AlreadyExists {
        /// The kind of object (`status list`, …).
        what: &'static str,
        /// Its identifier.
        id: String,
    },
    /// The object does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// The kind of object.
        what: &'static str,
        /// Its identifier.
        id: String,
    },
    /// A request argument is malformed or exceeds a limit; nothing was stored.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A tree size, leaf index or proof request lies beyond the current log.
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// A protocol rule of `atp-core` refused the request (for example a status index beyond
    /// the list); the code is the core error's code.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Stored data violates an invariant of the schema (a missing tree node, an unparsable
    /// stored event). It indicates corruption or a bug, never bad input.
    #[error("store corrupt: {0}")]
    Corrupt(String),
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The write transaction that carried this request failed as a whole (it could not begin
    /// or commit); nothing of it was stored.
    #[error("write transaction failed: {0}")]
    WriteFailed(String),
    /// Running the embedded schema migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A file-system operation on the data directory failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The store has been closed; no more writes are accepted.
    #[error("the store is closed")]
    Closed,
    /// A signed status-list update's `update_seq` is not above the list's version.
    #[error("update_seq {update_seq} of list {list_id} is not above the last accepted {last}")]
    StatusUpdateStale {
        /// The list.
        list_id: String,
        /// The list's version (the last accepted `update_seq`).
        last: u64,
        /// The refused update's `update_seq`.
        update_seq: u64,
    },
    /// A write fenced by a lease was refused: the lease has another holder or epoch now, or it
    /// expired. Nothing was stored; the writer is no longer the singleton.
    #[error("lease {name} is no longer held by {holder} at epoch {epoch}")]
    LeaseLost {
        /// The lease.
        name: String,
        /// The refused holder.
        holder: String,
        /// The refused epoch.
        epoch: u64,
    },
    /// The subject's personal data was erased (docs/audit.md, "Erasure"): nothing more about
    /// it is stored.
    #[error("subject {subject} was erased; nothing more about it is stored")]
    SubjectErased {
        /// The erased subject's DID.
        subject: String,
    },
    /// A change would clear a set entry of a revocation list.
    #[error("entry {index} of list {list_id} is revoked; revocation is final")]
    StatusRevocationFinal {
        /// The list.
        list_id: String,
        /// The entry.
        index: u64,
    },
}

impl StoreError {
    /// A stable, upper-snake-case code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Conflict { .. } => "STORE_CONFLICT",
            StoreError::AlreadyExists { .. } => "STORE_ALREADY_EXISTS",
            StoreError::NotFound { .. } => "STORE_NOT_FOUND",
            StoreError::InvalidArgument(_) => "STORE_INVALID_ARGUMENT",
            StoreError::OutOfRange(_) => "STORE_OUT_OF_RANGE",
            StoreError::Core(e) => e.code(),
            StoreError::Corrupt(_) => "STORE_CORRUPT",
            StoreError::Database(_) => "STORE_DATABASE",
            StoreError::WriteFailed(_) => "STORE_WRITE_FAILED",
            StoreError::Migration(_) => "STORE_MIGRATION",
            StoreError::Io { .. } => "STORE_IO",
            StoreError::Closed => "STORE_CLOSED",
            StoreError::LeaseLost { .. } => "STORE_LEASE_LOST",
            StoreError::StatusUpdateStale { .. } => "STATUS_UPDATE_STALE",
            StoreError::StatusRevocationFinal { .. } => "STATUS_REVOCATION_FINAL",
            StoreError::SubjectErased { .. } => "SUBJECT_ERASED",
        }
    }

    /// An [`StoreError::InvalidArgument`] with `reason`.
    pub fn invalid(reason: impl Into<String>) -> Self {
        StoreError::InvalidArgument(reason.into())
    }

    /// A [`StoreError::Corrupt`] with `reason`.
    pub fn corrupt(reason: impl Into<String>) -> Self {
        StoreError::Corrupt(reason.into())
    }

    /// Whether the database is out of reach, not the request at fault: the connection was lost
    /// or none could be had in time, the server is shutting down or is a read-only standby, or
    /// the store is closing. Nothing was stored, or a lost answer hides a commit that a repeat
    /// finds (every write is idempotent); either way the caller may retry, on this node or
    /// another. The node answers these with `UNAVAILABLE`, which clients retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Closed | StoreError::WriteFailed(_) => true,
            StoreError::Database(e) => is_unavailable_database(e),
            _ => false,
        }
    }

    /// True for a database unique-constraint violation.
    pub fn is_unique_violation(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
    }
}

/// The result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The sqlx failures of [`StoreError::is_unavailable`]. SQLSTATE class 08 is the standard's
/// connection exception and 25006 its read-only transaction; 57P01 to 57P03 are PostgreSQL's
/// administrator shutdown, crash shutdown and "cannot connect now".
fn is_unavailable_database(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "25006")
        }),
        _ => false,
    }
}
