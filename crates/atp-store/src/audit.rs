//! The audit trail's stored form (docs/audit.md): events written in the transaction of the
//! change they record ([`Store::write_audited`](crate::Store::write_audited)), sealed in batches
//! whose heads go into the transparency log, read back in sequence order.
//!
//! The store keeps what atp-core's rules need ([`atp_core::audit`]): each event's canonical body
//! and digest, and once sealed its batch and chain value. An [`AuditEntry`] can only be made
//! from a checked [`AuditEvent`], so the store never holds a body that is not an event.

use atp_core::accepted::AcceptedEvent;
use atp_core::audit::{AuditBatch, AuditEvent, event_digest};
use atp_core::status_list::StatusPurpose;
use atp_core::tlog::Hash;

use crate::error::{Result, StoreError};
use crate::model::{
    AppendedEvent, AppliedStatusUpdate, NewSignedStatusUpdate, NewStatusList, RoleBinding,
    RoleBindingChange, StatusSlot, StatusUpdate, SubjectErasure,
};

/// The most events one write may carry.
pub const MAX_AUDIT_ENTRIES_PER_WRITE: usize = 64;
/// The most events one batch seals.
pub const MAX_AUDIT_BATCH: u32 = 10_000;
/// The most events or batches one read returns.
pub const MAX_AUDIT_PAGE: u32 = 1_000;
/// The most batches one expiry removes the events of (at most 100,000 events per transaction).
pub const MAX_EXPIRE_BATCHES: u32 = 10;

/// One event ready to store: its canonical JSON, digest, time and code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    time_ms: i64,
    code: String,
    body: Vec<u8>,
    digest: Hash,
}

impl AuditEntry {
    /// The stored form of a checked event (`AUDIT_EVENT_INVALID` otherwise).
    pub fn new(event: &AuditEvent) -> Result<Self> {
        let body = event.canonical_bytes()?;
        Ok(AuditEntry {
            time_ms: event.time,
            code: event.code.clone(),
            digest: event_digest(&body),
            body,
        })
    }

    /// The event's time (Unix ms).
    pub fn time_ms(&self) -> i64 {
        self.time_ms
    }

    /// The event's code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The canonical JSON.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// [`atp_core::audit::event_digest`] of the body.
    pub fn digest(&self) -> &Hash {
        &self.digest
    }
}

/// Refuses a write with more than [`MAX_AUDIT_ENTRIES_PER_WRITE`] events.
pub fn check_audit_entries(entries: &[AuditEntry]) -> Result<()> {
    if entries.len() > MAX_AUDIT_ENTRIES_PER_WRITE {
        return Err(StoreError::InvalidArgument(format!(
            "more than {MAX_AUDIT_ENTRIES_PER_WRITE} audit events in one write"
        )));
    }
    Ok(())
}

/// One stored event as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAuditEvent {
    /// Its sequence number: increasing in the order events were stored, never reused.
    pub seq: u64,
    /// The event's time (Unix ms).
    pub time_ms: i64,
    /// Its code.
    pub code: String,
    /// The canonical JSON, as stored.
    pub body: Vec<u8>,
    /// The digest stored with it.
    pub digest: Hash,
    /// Its batch and chain value, once sealed.
    pub sealed: Option<(u64, Hash)>,
}

/// Which events to read: sequence numbers after `after_seq`, in increasing order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only events after this sequence number (0: from the start).
    pub after_seq: u64,
    /// At most this many (1 to [`MAX_AUDIT_PAGE`]).
    pub limit: u32,
    /// Only events with this code.
    pub code: Option<String>,
    /// Only events at or after this time (Unix ms).
    pub from_ms: Option<i64>,
    /// Only events before this time (Unix ms).
    pub to_ms: Option<i64>,
    /// Only the events of this batch (for verification).
    pub batch: Option<u64>,
}

/// Refuses a page size outside 1 to [`MAX_AUDIT_PAGE`].
pub fn check_audit_page(limit: u32) -> Result<()> {
    if limit == 0 || limit > MAX_AUDIT_PAGE {
        return Err(StoreError::InvalidArgument(format!(
            "an audit page holds 1 to {MAX_AUDIT_PAGE} items, not {limit}"
        )));
    }
    Ok(())
}

/// A sealed batch and where the log committed to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAuditBatch {
    /// The batch.
    pub batch: AuditBatch,
    /// The index of its `audit-batch` leaf.
    pub log_index: u64,
    /// When it was sealed (node clock, Unix ms).
    pub sealed_at_ms: i64,
    /// When retention expired its events (node clock, Unix ms): the batch row stays, so that
    /// the batches after it still chain on from its head and its leaf still proves it.
    pub expired_at_ms: Option<i64>,
}

/// A state change that [`Store::write_audited`](crate::Store::write_audited) makes together
/// with its audit events, in one transaction: both are stored, or neither.
///
/// Not `non_exhaustive`: a new write must be handled by every backend.
#[derive(Debug)]
pub enum AuditedWrite {
    /// No change: the events alone (a refusal, a sign-in, a read).
    Nothing,
    /// [`Store::append_kel_event`](crate::Store::append_kel_event).
    AppendKel(Box<AcceptedEvent>),
    /// [`Store::create_status_list`](crate::Store::create_status_list).
    CreateStatusList(NewStatusList),
    /// [`Store::set_status`](crate::Store::set_status).
    SetStatus {
        /// The list.
        list_id: String,
        /// The entry.
        index: u64,
        /// Its new value.
        value: u8,
    },
    /// [`Store::apply_status_update`](crate::Store::apply_status_update).
    ApplyStatusUpdate(NewSignedStatusUpdate),
    /// [`Store::allocate_status_index`](crate::Store::allocate_status_index).
    AllocateStatusIndex {
        /// The issuer.
        issuer: String,
        /// The list's purpose.
        purpose: StatusPurpose,
    },
    /// [`Store::set_trust_anchors_with_meta`](crate::Store::set_trust_anchors_with_meta)
    /// (`meta` `None`: [`Store::set_trust_anchors`](crate::Store::set_trust_anchors)).
    SetTrustAnchors {
        /// The anchors.
        anchors: Vec<String>,
        /// A metadata key and value written in the same transaction.
        meta: Option<(String, String)>,
    },
    /// [`Store::add_role_bindings`](crate::Store::add_role_bindings).
    AddRoleBindings(Vec<RoleBinding>),
    /// [`Store::remove_role_bindings`](crate::Store::remove_role_bindings).
    RemoveRoleBindings(Vec<RoleBinding>),
    /// The erasure of a subject's personal data (docs/audit.md, "Erasure"): its data key and
    /// the trust evidence about it are destroyed, an `erasure` leaf is appended, and nothing
    /// more about it is stored ([`StoreError::SubjectErased`]). Idempotent: erasing it again
    /// changes nothing and answers the first erasure.
    EraseSubject {
        /// The subject's DID.
        subject: String,
    },
}

/// What an [`AuditedWrite`] returned: the plain method's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditedOutcome {
    /// For [`AuditedWrite::Nothing`] and [`AuditedWrite::CreateStatusList`].
    Nothing,
    /// For [`AuditedWrite::AppendKel`].
    Appended(AppendedEvent),
    /// For [`AuditedWrite::SetStatus`].
    Status(StatusUpdate),
    /// For [`AuditedWrite::ApplyStatusUpdate`].
    StatusUpdateApplied(AppliedStatusUpdate),
    /// For [`AuditedWrite::AllocateStatusIndex`].
    Allocated(Option<StatusSlot>),
    /// For [`AuditedWrite::SetTrustAnchors`]: the new revision.
    AnchorsSet(u64),
    /// For the role-binding writes.
    RoleBindings(RoleBindingChange),
    /// For [`AuditedWrite::EraseSubject`].
    Erased(SubjectErasure),
}

macro_rules! outcome_accessor {
    ($(#[$doc:meta] $name:ident -> $ty:ty = $variant:ident;)*) => {
        impl AuditedOutcome {
            $(
                #[$doc]
                pub fn $name(self) -> Result<$ty> {
                    match self {
                        AuditedOutcome::$variant(v) => Ok(v),
                        other => Err(StoreError::corrupt(format!(
                            "an audited write answered {other:?}, not {}",
                            stringify!($variant)
                        ))),
                    }
                }
            )*
        }
    };
}

outcome_accessor! {
    /// The answer of an [`AuditedWrite::AppendKel`].
    appended -> AppendedEvent = Appended;
    /// The answer of an [`AuditedWrite::SetStatus`].
    status -> StatusUpdate = Status;
    /// The answer of an [`AuditedWrite::ApplyStatusUpdate`].
    status_update_applied -> AppliedStatusUpdate = StatusUpdateApplied;
    /// The answer of an [`AuditedWrite::AllocateStatusIndex`].
    allocated -> Option<StatusSlot> = Allocated;
    /// The answer of an [`AuditedWrite::SetTrustAnchors`].
    anchors_set -> u64 = AnchorsSet;
    /// The answer of a role-binding write.
    role_bindings -> RoleBindingChange = RoleBindings;
    /// The answer of an [`AuditedWrite::EraseSubject`].
    erased -> SubjectErasure = Erased;
}

/// Stores one event (`$1` time, `$2` code, `$3` body, `$4` digest). Portable.
pub const INSERT_AUDIT_EVENT_SQL: &str =
    "INSERT INTO audit_events (time_ms, code, body, digest) VALUES ($1, $2, $3, $4)";
/// The latest batch's number and head. Portable.
pub const LAST_AUDIT_BATCH_SQL: &str =
    "SELECT batch_number, head FROM audit_batches ORDER BY batch_number DESC LIMIT 1";
/// The oldest unsealed events (`$1` at most), in sequence order. Portable.
pub const UNSEALED_AUDIT_EVENTS_SQL: &str =
    "SELECT seq, digest FROM audit_events WHERE batch IS NULL ORDER BY seq LIMIT $1";
/// Stores a sealed batch. Portable.
pub const INSERT_AUDIT_BATCH_SQL: &str = "INSERT INTO audit_batches (batch_number, first_seq, \
     last_seq, event_count, previous, head, log_index, sealed_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// Batches after `$1`, at most `$2`, in order. Portable.
pub const LIST_AUDIT_BATCHES_SQL: &str = "SELECT batch_number, first_seq, last_seq, event_count, \
     previous, head, log_index, sealed_at_ms, expired_at_ms FROM audit_batches \
     WHERE batch_number > $1 ORDER BY batch_number LIMIT $2";
/// The oldest batches whose events are kept (`$1` at most): number and seal time. Portable.
pub const UNEXPIRED_AUDIT_BATCHES_SQL: &str = "SELECT batch_number, sealed_at_ms FROM \
     audit_batches WHERE expired_at_ms IS NULL ORDER BY batch_number LIMIT $1";
/// Marks the batches up to `$2` expired at `$1`. Portable.
pub const EXPIRE_AUDIT_BATCHES_SQL: &str = "UPDATE audit_batches SET expired_at_ms = $1 \
     WHERE expired_at_ms IS NULL AND batch_number <= $2";
/// Deletes the events of the batches up to `$1`. Portable.
pub const DELETE_EXPIRED_AUDIT_EVENTS_SQL: &str =
    "DELETE FROM audit_events WHERE batch IS NOT NULL AND batch <= $1";
/// Events after `$1` with the optional filters `$2` code, `$3` from, `$4` to, `$5` batch, at most
/// `$6`, in sequence order. Portable.
pub const LIST_AUDIT_EVENTS_SQL: &str = "SELECT seq, time_ms, code, body, digest, batch, chain \
     FROM audit_events WHERE seq > $1 AND ($2 IS NULL OR code = $2) \
     AND ($3 IS NULL OR time_ms >= $3) AND ($4 IS NULL OR time_ms < $4) \
     AND ($5 IS NULL OR batch = $5) ORDER BY seq LIMIT $6";

/// A stored event row: seq, time, code, body, digest, batch, chain.
pub type AuditEventRow = (i64, i64, String, Vec<u8>, Vec<u8>, Option<i64>, Option<Vec<u8>>);
/// A stored batch row, in [`LIST_AUDIT_BATCHES_SQL`]'s column order.
pub type AuditBatchRow = (i64, i64, i64, i64, Vec<u8>, Vec<u8>, i64, i64, Option<i64>);

/// Decodes a stored event row.
pub fn audit_event_record(row: AuditEventRow) -> Result<StoredAuditEvent> {
    let (seq, time_ms, code, body, digest, batch, chain) = row;
    let sealed = match (batch, chain) {
        (Some(batch), Some(chain)) => Some((
            crate::backend::to_u64(batch, "audit batch")?,
            crate::backend::to_hash(chain, "audit chain")?,
        )),
        (None, None) => None,
        _ => return Err(StoreError::corrupt("an audit event is half sealed")),
    };
    Ok(StoredAuditEvent {
        seq: crate::backend::to_u64(seq, "audit sequence")?,
        time_ms,
        code,
        body,
        digest: crate::backend::to_hash(digest, "audit digest")?,
        sealed,
    })
}

/// Decodes a stored batch row.
pub fn audit_batch_record(row: AuditBatchRow) -> Result<StoredAuditBatch> {
    use crate::backend::{to_hash, to_u64};
    let (number, first, last, count, previous, head, log_index, sealed_at_ms, expired_at_ms) = row;
    Ok(StoredAuditBatch {
        batch: AuditBatch {
            number: to_u64(number, "audit batch")?,
            first_seq: to_u64(first, "audit sequence")?,
            last_seq: to_u64(last, "audit sequence")?,
            count: to_u64(count, "audit batch size")?,
            previous: to_hash(previous, "audit batch previous")?,
            head: to_hash(head, "audit batch head")?,
        },
        log_index: to_u64(log_index, "log index")?,
        sealed_at_ms,
        expired_at_ms,
    })
}

/// Which batches an expiry removes the events of: from the oldest kept batch on
/// ([`UNEXPIRED_AUDIT_BATCHES_SQL`] rows, in order), those sealed before `sealed_before_ms`, up
/// to the first that was not. Expiry only ever removes the oldest batches, so what remains is
/// one unbroken chain. The last batch number to expire, or `None` for none.
pub fn plan_expiry(oldest_kept: &[(i64, i64)], sealed_before_ms: i64) -> Option<i64> {
    oldest_kept
        .iter()
        .take_while(|(_, sealed_at_ms)| *sealed_at_ms < sealed_before_ms)
        .last()
        .map(|(number, _)| *number)
}

/// Refuses an expiry of more than [`MAX_EXPIRE_BATCHES`] (or no) batches at once.
pub fn check_expiry(max_batches: u32) -> Result<()> {
    if max_batches == 0 || max_batches > MAX_EXPIRE_BATCHES {
        return Err(StoreError::InvalidArgument(format!(
            "an expiry covers 1 to {MAX_EXPIRE_BATCHES} batches, not {max_batches}"
        )));
    }
    Ok(())
}

/// The next batch: the unsealed events (`(seq, digest)`, in sequence order) chained on from the
/// latest batch (`None` before the first), with each event's chain value. `None` when there is
/// nothing to seal.
pub fn plan_seal(
    latest: Option<(u64, Hash)>,
    unsealed: &[(u64, Hash)],
) -> Option<(AuditBatch, Vec<Hash>)> {
    let (&(first_seq, _), &(last_seq, _)) = (unsealed.first()?, unsealed.last()?);
    let (number, previous) = match latest {
        Some((number, head)) => (number + 1, head),
        None => (1, atp_core::audit::GENESIS),
    };
    let mut chain = previous;
    let chains: Vec<Hash> = unsealed
        .iter()
        .map(|(_, digest)| {
            chain = atp_core::audit::chain_next(&chain, digest);
            chain
        })
        .collect();
    let batch = AuditBatch {
        number,
        first_seq,
        last_seq,
        count: unsealed.len() as u64,
        previous,
        head: chain,
    };
    Some((batch, chains))
}

/// The reference stored with a batch's log leaf.
pub fn audit_batch_reference(number: u64) -> String {
    format!("audit-batch/{number}")
}

/// Refuses a seal size outside 1 to [`MAX_AUDIT_BATCH`].
pub fn check_seal_size(max_events: u32) -> Result<()> {
    if max_events == 0 || max_events > MAX_AUDIT_BATCH {
        return Err(StoreError::InvalidArgument(format!(
            "a batch seals 1 to {MAX_AUDIT_BATCH} audit events, not {max_events}"
        )));
    }
    Ok(())
}
