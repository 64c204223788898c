//! What every [`Store`](crate::Store) implementation shares: the checks a request passes before
//! it reaches a database, the rules a write applies inside its transaction, the stored form of
//! a key event, the addressing of the stored tree nodes and the integer conversions.
//!
//! A backend (the embedded SQLite store here, the PostgreSQL store of the enterprise edition)
//! owns only its SQL and its transactions; everything that decides what is accepted and what a
//! log leaf commits to is here, once, so that the backends cannot drift apart. The conformance
//! suite (`atp-store-conformance`) holds them to the same answers.

pub mod event_codec;
pub mod subject_data;

use atp_core::CoreError;
use atp_core::accepted::AcceptedEvent;
use atp_core::checkpoint::{Checkpoint, SignedNote};
use atp_core::kel::{EventType, SignedEvent};
use atp_core::log_entry::LeafKind;
use atp_core::log_entry::{anchors_data_hash, evidence_data_hash};
use atp_core::status_list::{BitstringStatusList, StatusPurpose};
use atp_core::tlog::Hash;

use crate::error::{Result, StoreError};
use crate::model::{
    DEFAULT_PAGE_SIZE, KelHead, Lease, LogEntry, MAX_EVIDENCE_BYTES, MAX_EVIDENCE_TYPE_BYTES,
    MAX_ID_BYTES, MAX_LEASE_TTL_MS, MAX_LIST_ID_BYTES, MAX_META_KEY_BYTES, MAX_META_VALUE_BYTES,
    MAX_PAGE_SIZE, MAX_ROLE_BINDING_FIELD_BYTES, MAX_ROLE_BINDINGS, MAX_STATUS_UPDATE_BYTES,
    MAX_STATUS_UPDATE_CHANGES, MAX_TRUST_ANCHORS, MAX_TRUST_EVIDENCE_BYTES, MIN_LEASE_TTL_MS,
    NewEvidence, NewSignedStatusUpdate, NewStatusList, NewTrustEvidence, RoleBinding,
    StatusListRecord, StoredEvent,
};
pub use crate::tree::{Frontier, NodeKey, Plan, peak_keys};

/// The largest signature a signed status-list update may carry.
pub const MAX_STATUS_UPDATE_SIGNATURE_BYTES: usize = 16_384;

// --- Conversions --------------------------------------------------------------------------------

/// The current time in Unix milliseconds (node clock; 0 before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A `u64` from the API as a database `BIGINT`.
pub fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::invalid(format!("{what} {v} is too large")))
}

/// A stored `BIGINT` that must not be negative.
pub fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::corrupt(format!("negative {what} {v}")))
}

/// A stored 32-byte hash.
pub fn to_hash(v: Vec<u8>, what: &str) -> Result<Hash> {
    Hash::try_from(v.as_slice())
        .map_err(|_| StoreError::corrupt(format!("{what} is {} bytes, not 32", v.len())))
}

// --- Request checks (before any database work) --------------------------------------------------

/// An identifier (DID, issuer, subject): non-empty, bounded, printable, no whitespace.
pub fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        return Err(StoreError::invalid(format!("{what} must be 1 to {MAX_ID_BYTES} bytes")));
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(StoreError::invalid(format!("{what} contains whitespace or control chars")));
    }
    Ok(())
}

/// A node-metadata key and value within their limits.
pub fn check_meta(key: &str, value: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_META_KEY_BYTES || key.chars().any(char::is_control) {
        return Err(StoreError::invalid(format!(
            "metadata key must be 1 to {MAX_META_KEY_BYTES} bytes without control chars"
        )));
    }
    if value.len() > MAX_META_VALUE_BYTES {
        return Err(StoreError::invalid(format!(
            "metadata value is above {MAX_META_VALUE_BYTES} bytes"
        )));
    }
    Ok(())
}

/// A status list id: `[A-Za-z0-9._-]{1,128}`.
pub fn check_list_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_LIST_ID_BYTES
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(StoreError::invalid(format!(
            "status list id must be 1 to {MAX_LIST_ID_BYTES} characters of [A-Za-z0-9._-]"
        )));
    }
    Ok(())
}

/// A type or kind label: 1 to [`MAX_EVIDENCE_TYPE_BYTES`] bytes without control characters.
fn check_label(what: &str, label: &str) -> Result<()> {
    if label.is_empty()
        || label.len() > MAX_EVIDENCE_TYPE_BYTES
        || label.chars().any(char::is_control)
    {
        return Err(StoreError::invalid(format!(
            "{what} must be 1 to {MAX_EVIDENCE_TYPE_BYTES} bytes without control chars"
        )));
    }
    Ok(())
}

/// A KEL append as a backend writes it, prepared from the accepted event on the caller's task:
/// the store's own bound on the DID column checked, and the canonical bytes compressed.
#[derive(Debug)]
pub struct KelAppend {
    /// The DID.
    pub did: String,
    /// The event's sequence number.
    pub sequence: u64,
    /// The event type's name.
    pub event_type: &'static str,
    /// Whether the event deactivates the log.
    pub deactivated: bool,
    /// The event's timestamp (`ts`).
    pub ts: String,
    /// The event's digest.
    pub digest: String,
    /// What the `kel` log leaf commits to.
    pub data_hash: Hash,
    /// The canonical signed event, raw DEFLATE ([`event_codec`]).
    pub deflated: Vec<u8>,
    /// The head the event was accepted against (`None`: the DID must not exist yet).
    pub expected: Option<KelHead>,
}

impl KelAppend {
    /// Prepares an event that atp-core accepted.
    pub fn prepare(event: AcceptedEvent) -> Result<Self> {
        check_id("DID", event.did())?;
        let deflated = event_codec::deflate(event.canonical_bytes())?;
        Ok(Self {
            sequence: event.sequence(),
            event_type: event.event_type().as_str(),
            deactivated: event.event_type() == EventType::Deactivation,
            ts: event.timestamp().to_owned(),
            did: event.did().to_owned(),
            digest: event.digest().to_owned(),
            data_hash: *event.data_hash(),
            deflated,
            expected: event
                .extends()
                .map(|(sequence, digest)| KelHead { sequence, digest: digest.to_owned() }),
        })
    }

    /// What the log leaf's `subject_ref` points to: the event in its DID's log.
    pub fn reference(&self) -> String {
        format!("{}?versionId={}", self.did, self.sequence)
    }

    /// The append rule, judged inside the write transaction against the head found there
    /// (`found`: the stored head and whether the log is deactivated): the head must still be
    /// the one the event was accepted against, and a deactivated log takes no event.
    pub fn check_head(&self, found: Option<(&KelHead, bool)>) -> Result<()> {
        match (&self.expected, found) {
            (None, None) => Ok(()),
            (Some(expected), Some((head, deactivated))) if expected == head => {
                if deactivated {
                    return Err(StoreError::invalid("the log is deactivated; no event can follow"));
                }
                Ok(())
            }
            _ => Err(StoreError::Conflict {
                did: self.did.clone(),
                expected: self.expected.clone(),
                found: found.map(|(h, _)| h.clone()),
            }),
        }
    }

    /// A unique violation on a KEL row means another writer got there first (a second line of
    /// defence behind [`KelAppend::check_head`]).
    pub fn conflict_on_unique(&self, e: sqlx::Error) -> StoreError {
        if StoreError::is_unique_violation(&e) {
            StoreError::Conflict {
                did: self.did.clone(),
                expected: self.expected.clone(),
                found: None,
            }
        } else {
            StoreError::Database(e)
        }
    }
}

/// A checkpoint note the store may keep: it parses as a signed note with a tlog-checkpoint body
/// and carries a signature. Returns its size and root; the backend checks them against the log.
pub fn parse_checkpoint(note: &str) -> Result<(u64, Hash)> {
    let signed = SignedNote::parse(note)?;
    let checkpoint = Checkpoint::parse_body(&signed.text)?;
    if signed.signatures.is_empty() {
        return Err(StoreError::invalid("checkpoint note carries no signature"));
    }
    to_i64(checkpoint.size, "checkpoint size")?;
    Ok((checkpoint.size, checkpoint.root_hash))
}

/// A new status list's checks; returns its all-zero bitstring.
pub fn prepare_status_list(list: &NewStatusList) -> Result<Vec<u8>> {
    check_list_id(&list.list_id)?;
    check_id("issuer", &list.issuer)?;
    if list.entries & 7 != 0 {
        return Err(StoreError::invalid("status list entries must be a multiple of 8"));
    }
    let bits = BitstringStatusList::new(list.entries, list.status_size)?;
    to_i64(list.entries, "entries")?;
    Ok(bits.as_bytes().to_vec())
}

/// A signed status-list update's shape and limits.
pub fn check_status_update(update: &NewSignedStatusUpdate) -> Result<()> {
    check_list_id(&update.list_id)?;
    check_id("issuer", &update.issuer)?;
    if update.changes.is_empty() || update.changes.len() > MAX_STATUS_UPDATE_CHANGES {
        return Err(StoreError::invalid(format!(
            "a status update holds 1 to {MAX_STATUS_UPDATE_CHANGES} changes"
        )));
    }
    if update.update.len() > MAX_STATUS_UPDATE_BYTES
        || update.signature.len() > MAX_STATUS_UPDATE_SIGNATURE_BYTES
    {
        return Err(StoreError::invalid("status update or signature too large"));
    }
    Ok(())
}

/// A trust-anchor set's checks; returns it sorted and de-duplicated with the data hash of its
/// `anchors` log leaf.
pub fn prepare_anchors(
    mut anchors: Vec<String>,
    meta: Option<&(String, String)>,
) -> Result<(Vec<String>, Hash)> {
    if let Some((key, value)) = meta {
        check_meta(key, value)?;
    }
    if anchors.len() > MAX_TRUST_ANCHORS {
        return Err(StoreError::invalid(format!(
            "{} trust anchors, above the limit of {MAX_TRUST_ANCHORS}",
            anchors.len()
        )));
    }
    for a in &anchors {
        check_id("trust anchor", a)?;
    }
    anchors.sort();
    anchors.dedup();
    let data_hash = anchors_data_hash(&anchors)?;
    Ok((anchors, data_hash))
}

/// A piece of evidence's checks; returns the data hash of its `evidence` log leaf.
pub fn prepare_evidence(evidence: &NewEvidence) -> Result<Hash> {
    check_id("evidence subject", &evidence.subject)?;
    check_label("evidence type", &evidence.evidence_type)?;
    if evidence.body.is_empty() || evidence.body.len() > MAX_EVIDENCE_BYTES {
        return Err(StoreError::invalid(format!(
            "evidence body must be 1 to {MAX_EVIDENCE_BYTES} bytes"
        )));
    }
    Ok(evidence_data_hash(&evidence.body))
}

/// Signed trust evidence's checks (the caller verified the signatures).
pub fn check_trust_evidence(evidence: &NewTrustEvidence) -> Result<()> {
    check_id("evidence issuer", &evidence.issuer)?;
    check_id("evidence subject", &evidence.subject)?;
    check_label("evidence kind", &evidence.kind)?;
    if evidence.evidence_json.is_empty() || evidence.evidence_json.len() > MAX_TRUST_EVIDENCE_BYTES
    {
        return Err(StoreError::invalid(format!(
            "signed evidence must be 1 to {MAX_TRUST_EVIDENCE_BYTES} bytes"
        )));
    }
    Ok(())
}

/// What the `evidence` log leaf of signed trust evidence points to.
pub fn trust_evidence_reference(evidence: &NewTrustEvidence) -> String {
    format!("{}#{}", evidence.subject, evidence.kind)
}

/// What a role-binding write does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingWrite {
    /// Adds the bindings that do not exist yet.
    Add,
    /// Removes the bindings that exist.
    Remove,
    /// Adds the bindings only if the policy was never written (revision 0).
    Seed,
}

/// Checks the shape of every binding before anything is queued: 1 to
/// [`MAX_ROLE_BINDINGS`] bindings, each field 1 to [`MAX_ROLE_BINDING_FIELD_BYTES`] bytes
/// without a comma, a control character or surrounding whitespace.
pub fn check_bindings(bindings: &[RoleBinding]) -> Result<()> {
    if bindings.len() > MAX_ROLE_BINDINGS {
        return Err(StoreError::invalid(format!(
            "at most {MAX_ROLE_BINDINGS} role bindings per write"
        )));
    }
    for b in bindings {
        for (name, value) in [("subject", &b.subject), ("role", &b.role), ("domain", &b.domain)] {
            let ok = !value.is_empty()
                && value.len() <= MAX_ROLE_BINDING_FIELD_BYTES
                && value.trim() == value.as_str()
                && !value.chars().any(|c| c == ',' || c.is_control());
            if !ok {
                return Err(StoreError::invalid(format!(
                    "role binding {name} {value:?}: 1 to {MAX_ROLE_BINDING_FIELD_BYTES} bytes, \
                     no comma, control character or surrounding space"
                )));
            }
        }
    }
    Ok(())
}

/// The refusal when a role-binding write would grow the policy past [`MAX_ROLE_BINDINGS`].
pub fn check_policy_size(total: u64) -> Result<()> {
    if total > MAX_ROLE_BINDINGS as u64 {
        return Err(StoreError::invalid(format!(
            "the policy would hold more than {MAX_ROLE_BINDINGS} role bindings"
        )));
    }
    Ok(())
}

// --- Rules applied inside a write transaction ---------------------------------------------------

/// A stored status list as a write reads it.
#[derive(Debug)]
pub struct StoredList {
    /// The issuer that controls the list.
    pub issuer: String,
    /// Its purpose, as stored.
    pub purpose: String,
    /// Bits per entry, as stored.
    pub status_size: i64,
    /// The number of entries, as stored.
    pub entries: i64,
    /// The bitstring.
    pub bits: Vec<u8>,
    /// The list's version, as stored.
    pub version: i64,
}

impl StoredList {
    fn decode(self) -> Result<(BitstringStatusList, u64, u64)> {
        let status_size =
            u8::try_from(self.status_size).map_err(|_| StoreError::corrupt("bad status size"))?;
        let list = BitstringStatusList::from_bytes(self.bits, status_size)
            .map_err(|e| StoreError::corrupt(format!("stored status list: {e}")))?;
        Ok((list, to_u64(self.entries, "entries")?, to_u64(self.version, "list version")?))
    }
}

/// What one entry's change does to a list: the new bitstring and version when it changes
/// anything (`None` when the entry already had the value).
#[derive(Debug)]
pub struct SetStatusOutcome {
    /// The entry's value before.
    pub previous: u8,
    /// The list's version before.
    pub version: u64,
    /// The new bitstring, version and the data hash of the `status` leaf, when it changed.
    pub change: Option<(Vec<u8>, u64, Hash)>,
}

/// Sets entry `index` of a stored list to `value`: the index within the list, the value within
/// the status size, and the version incremented only by a change.
pub fn set_status_rule(
    list_id: &str,
    stored: StoredList,
    index: u64,
    value: u8,
) -> Result<SetStatusOutcome> {
    let (mut list, entries, version) = stored.decode()?;
    if index >= entries {
        return Err(CoreError::StatusListIndexOutOfRange { index, entries }.into());
    }
    let previous = list.get(index)?;
    list.set(index, value)?;
    if previous == value {
        return Ok(SetStatusOutcome { previous, version, change: None });
    }
    let new_version =
        version.checked_add(1).ok_or_else(|| StoreError::corrupt("list version overflow"))?;
    let data_hash = atp_core::log_entry::status_data_hash(list_id, index, value, new_version)?;
    Ok(SetStatusOutcome {
        previous,
        version,
        change: Some((list.as_bytes().to_vec(), new_version, data_hash)),
    })
}

/// What the `status` log leaf of an entry's change points to.
pub fn status_reference(list_id: &str, index: u64) -> String {
    format!("{list_id}#{index}")
}

/// Applies an external issuer's signed update to a stored list as a whole: the issuer and
/// purpose must be the list's, `update_seq` above its version, every index within the list, and
/// no change may clear a revoked entry. Returns the new bitstring and the number of entries
/// whose value changed.
pub fn apply_status_update_rule(
    update: &NewSignedStatusUpdate,
    stored: StoredList,
) -> Result<(Vec<u8>, u64)> {
    if stored.issuer != update.issuer {
        return Err(StoreError::invalid("the update's issuer does not control the list"));
    }
    if stored.purpose != update.purpose.as_str() {
        return Err(
            CoreError::StatusListPurposeMismatch { purpose: update.purpose.as_str() }.into()
        );
    }
    let (mut list, entries, version) = stored.decode()?;
    if update.update_seq <= version {
        return Err(StoreError::StatusUpdateStale {
            list_id: update.list_id.clone(),
            last: version,
            update_seq: update.update_seq,
        });
    }
    let mut changed = 0u64;
    for &(index, value) in &update.changes {
        if index >= entries {
            return Err(CoreError::StatusListIndexOutOfRange { index, entries }.into());
        }
        let previous = list.get(index)?;
        if update.purpose == StatusPurpose::Revocation && previous != 0 && value == 0 {
            return Err(StoreError::StatusRevocationFinal {
                list_id: update.list_id.clone(),
                index,
            });
        }
        list.set(index, value)?;
        changed += u64::from(previous != value);
    }
    Ok((list.as_bytes().to_vec(), changed))
}

/// What the `status-update` log leaf of a signed update points to.
pub fn status_update_reference(update: &NewSignedStatusUpdate) -> String {
    format!("{}@{}", update.list_id, update.update_seq)
}

// --- Decoding what a read returns -----------------------------------------------------------------

/// The page size a listing uses: [`DEFAULT_PAGE_SIZE`] for 0, at most [`MAX_PAGE_SIZE`].
pub fn page_limit(page_size: u32) -> u32 {
    match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    }
}

/// The identities listing's page token (the last DID of the previous page), bounded.
pub fn identity_page_after(page_token: Option<&str>) -> Result<&str> {
    let after = page_token.unwrap_or("");
    if after.len() > MAX_ID_BYTES {
        return Err(StoreError::invalid("page token too long"));
    }
    Ok(after)
}

/// The trust-evidence listing's page token: the log index of the previous page's last item
/// (the next page holds lower indices); no token starts from the newest.
pub fn evidence_page_before(page_token: Option<&str>) -> Result<i64> {
    match page_token {
        None | Some("") => Ok(i64::MAX),
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|i| *i >= 0 && t.len() <= 20)
            .ok_or_else(|| StoreError::invalid("malformed page token")),
    }
}

/// A tree size a read asks for must lie within the log.
pub fn check_tree_size(size: u64, log_size: u64) -> Result<()> {
    if size > log_size {
        return Err(StoreError::OutOfRange(format!(
            "tree size {size} is beyond the log size {log_size}"
        )));
    }
    Ok(())
}

/// A checkpoint may be stored only over the log it names: its size within the log and its
/// root the log's root at that size.
pub fn check_checkpoint_fits(size: u64, log_size: u64, log_root: &Hash, root: &Hash) -> Result<()> {
    if size > log_size {
        return Err(StoreError::OutOfRange(format!(
            "checkpoint size {size} is beyond the log size {log_size}"
        )));
    }
    if log_root != root {
        return Err(StoreError::invalid(format!(
            "checkpoint root is not the log's root at size {size}"
        )));
    }
    Ok(())
}

/// A stored key event from its row: the canonical signed JSON parsed again.
pub fn stored_event(
    sequence: i64,
    digest: String,
    canonical: &[u8],
    log_index: i64,
) -> Result<StoredEvent> {
    let event = SignedEvent::from_json(canonical)
        .map_err(|e| StoreError::corrupt(format!("stored event does not parse: {e}")))?;
    Ok(StoredEvent {
        event,
        sequence: to_u64(sequence, "sequence")?,
        digest,
        log_index: to_u64(log_index, "log index")?,
    })
}

/// A log entry from its row.
pub fn log_entry(
    index: i64,
    kind: &str,
    data_hash: Vec<u8>,
    leaf_hash: Vec<u8>,
    reference: Option<String>,
    created_at_ms: i64,
) -> Result<LogEntry> {
    Ok(LogEntry {
        index: to_u64(index, "leaf index")?,
        kind: LeafKind::parse(kind)
            .ok_or_else(|| StoreError::corrupt(format!("unknown leaf kind {kind:?}")))?,
        data_hash: to_hash(data_hash, "data hash")?,
        leaf_hash: to_hash(leaf_hash, "leaf hash")?,
        reference,
        created_at_ms,
    })
}

/// A status list record from its row, its bitstring checked against its entry count.
pub fn status_list_record(
    list_id: String,
    stored: StoredList,
    allocatable: bool,
    next_index: i64,
    created_at_ms: i64,
    updated_at_ms: i64,
) -> Result<StatusListRecord> {
    let StoredList { issuer, purpose, .. } = &stored;
    let (issuer, purpose) = (issuer.clone(), purpose.clone());
    let (list, entries, version) = stored.decode()?;
    if list.entries() != entries {
        return Err(StoreError::corrupt("status list length does not match its entry count"));
    }
    Ok(StatusListRecord {
        list_id,
        issuer,
        purpose: StatusPurpose::parse(&purpose)
            .map_err(|_| StoreError::corrupt(format!("unknown status purpose {purpose:?}")))?,
        list,
        version,
        allocatable,
        next_index: to_u64(next_index, "next index")?,
        created_at_ms,
        updated_at_ms,
    })
}

// --- Leases ---------------------------------------------------------------------------------------

/// A lease row as a write reads it: holder, epoch, valid until (database clock, ms).
pub type LeaseRow = (String, i64, i64);

/// A lease request's checks: the name and holder are identifiers, the TTL within
/// [`MIN_LEASE_TTL_MS`]..=[`MAX_LEASE_TTL_MS`].
pub fn check_lease_request(name: &str, holder: &str, ttl_ms: u64) -> Result<()> {
    check_id("lease name", name)?;
    check_id("lease holder", holder)?;
    if !(MIN_LEASE_TTL_MS..=MAX_LEASE_TTL_MS).contains(&ttl_ms) {
        return Err(StoreError::invalid(format!(
            "a lease lasts {MIN_LEASE_TTL_MS} to {MAX_LEASE_TTL_MS} ms"
        )));
    }
    Ok(())
}

/// The lease rule, judged under the write lock at the database's time `now_ms`: a free lease
/// is granted at epoch 1; the holder of a valid lease renews it (same epoch); an expired lease
/// goes to whoever asks, at the next epoch; a valid lease of another holder is refused
/// (`None`).
pub fn lease_decision(
    name: &str,
    holder: &str,
    ttl_ms: u64,
    row: Option<LeaseRow>,
    now_ms: i64,
) -> Result<Option<Lease>> {
    let ttl = i64::try_from(ttl_ms).map_err(|_| StoreError::invalid("lease ttl too large"))?;
    let valid_until_ms = now_ms.saturating_add(ttl);
    let epoch = match row {
        None => 1,
        Some((current, epoch, until)) => {
            let epoch = to_u64(epoch, "lease epoch")?;
            if until > now_ms {
                if current != holder {
                    return Ok(None);
                }
                epoch
            } else {
                epoch.checked_add(1).ok_or_else(|| StoreError::corrupt("lease epoch overflow"))?
            }
        }
    };
    Ok(Some(Lease { name: name.to_owned(), holder: holder.to_owned(), epoch, valid_until_ms }))
}

/// The fence of a write: `lease` must still be the stored lease (same holder and epoch) and
/// unexpired at the database's time `now_ms`.
pub fn check_fence(lease: &Lease, row: Option<LeaseRow>, now_ms: i64) -> Result<()> {
    let current = row.is_some_and(|(holder, epoch, until)| {
        holder == lease.holder
            && u64::try_from(epoch).is_ok_and(|e| e == lease.epoch)
            && until > now_ms
    });
    if current {
        Ok(())
    } else {
        Err(StoreError::LeaseLost {
            name: lease.name.clone(),
            holder: lease.holder.clone(),
            epoch: lease.epoch,
        })
    }
}

// --- Trust snapshot -------------------------------------------------------------------------------

/// Stores the trust snapshot (`$1` computed_at_ms, `$2` body) as the one row of
/// `trust_snapshot`, one revision above the last; returns the revision. Portable: SQLite
/// (3.35+) and PostgreSQL upserts with `RETURNING`.
pub const PUT_TRUST_SNAPSHOT_SQL: &str = "INSERT INTO trust_snapshot (singleton, revision, computed_at_ms, body) \
     VALUES (1, 1, $1, $2) ON CONFLICT (singleton) DO UPDATE SET \
     revision = trust_snapshot.revision + 1, computed_at_ms = excluded.computed_at_ms, \
     body = excluded.body RETURNING revision";

/// The stored snapshot's revision and computation time.
pub const TRUST_SNAPSHOT_REVISION_SQL: &str =
    "SELECT revision, computed_at_ms FROM trust_snapshot WHERE singleton = 1";

/// The stored snapshot.
pub const TRUST_SNAPSHOT_SQL: &str =
    "SELECT revision, computed_at_ms, body FROM trust_snapshot WHERE singleton = 1";

/// A trust snapshot to store: 1 to [`crate::MAX_TRUST_SNAPSHOT_BYTES`] bytes, computed at a
/// time that is not negative.
pub fn check_trust_snapshot(computed_at_ms: i64, body: &[u8]) -> Result<()> {
    if body.is_empty() || body.len() > crate::MAX_TRUST_SNAPSHOT_BYTES {
        return Err(StoreError::invalid(format!(
            "a trust snapshot is 1 to {} bytes, not {}",
            crate::MAX_TRUST_SNAPSHOT_BYTES,
            body.len()
        )));
    }
    if computed_at_ms < 0 {
        return Err(StoreError::invalid("a trust snapshot's computation time is negative"));
    }
    Ok(())
}

/// A stored snapshot row as read: revision, computation time, body.
pub fn trust_snapshot_record(row: (i64, i64, Vec<u8>)) -> Result<crate::StoredTrustSnapshot> {
    let (revision, computed_at_ms, body) = row;
    Ok(crate::StoredTrustSnapshot {
        revision: to_u64(revision, "trust snapshot revision")?,
        computed_at_ms,
        body,
    })
}

// --- One-time values ------------------------------------------------------------------------------

/// Records a one-time value's digest unless a live record exists: inserts it, or replaces a
/// record that expired before `$3`; one row affected means recorded. Portable: SQLite (3.24+)
/// and PostgreSQL upserts with a condition.
pub const RECORD_ONCE_SQL: &str = "INSERT INTO replay_guard (digest, keep_until_ms) VALUES ($1, $2) \
     ON CONFLICT (digest) DO UPDATE SET keep_until_ms = excluded.keep_until_ms \
     WHERE replay_guard.keep_until_ms < $3";

/// Counts the records of digest `$1` still live at `$2` (0 or 1): live through the last instant
/// of `keep_until_ms`, as [`RECORD_ONCE_SQL`] counts them.
pub const ONCE_RECORD_LIVE_SQL: &str =
    "SELECT COUNT(*) FROM replay_guard WHERE digest = $1 AND keep_until_ms >= $2";

/// Deletes up to `$2` records that expired before `$1`.
pub const PURGE_ONCE_SQL: &str = "DELETE FROM replay_guard WHERE digest IN \
     (SELECT digest FROM replay_guard WHERE keep_until_ms < $1 LIMIT $2)";
