//! The audit trail's rules: one event schema, its canonical bytes and digest, and the hash chain
//! that makes a stored trail tamper-evident (docs/audit.md, docs/protocol.md Part E).
//!
//! - **Event.** [`AuditEvent`] is one JSON object (the Okta System Log and Teleport style):
//!   `id` (UUIDv7), `time`, a stable `code` and its `type`, `actor`, `client`, `target[]`,
//!   `outcome`, `request_id` and the policy `rule` that decided. Its stored form is its RFC 8785
//!   canonical JSON; [`AuditEvent::parse`] accepts nothing else, so one event has one byte string.
//! - **Digest.** `event_digest = SHA-256("atp/audit-event/1\n" || canonical JSON)`.
//! - **Chain.** Events are sealed in batches. Inside a batch, in sequence order,
//!   `chain_i = SHA-256("atp/audit-chain/1\n" || chain_{i-1} || event_digest_i)`, starting from the
//!   previous batch's head (32 zero bytes before the first batch). The batch's head is its last
//!   chain value.
//! - **Log.** Each batch is committed to the transparency log as an `audit-batch` leaf whose data
//!   hash is [`batch_data_hash`]: number, first and last sequence number, count, previous head and
//!   head. A node that rewrites a sealed batch must then rewrite the log, which its signed
//!   checkpoints forbid.
//!
//! [`verify_batch`] recomputes a batch from its stored rows and names the first row that does not
//! fit: a changed body, a missing or reordered row, or a head that differs.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::CoreError;
use crate::tlog::Hash;

type Result<T> = std::result::Result<T, CoreError>;

/// The longest canonical event accepted, in bytes. Events are small (a few hundred bytes); the
/// bound keeps a hostile row from costing a verifier memory.
pub const MAX_EVENT_BYTES: usize = 16 * 1024;
/// The most targets one event names.
pub const MAX_TARGETS: usize = 64;
/// The longest string field, in bytes.
pub const MAX_FIELD_BYTES: usize = 1024;

const EVENT_PREFIX: &[u8] = b"atp/audit-event/1\n";
const CHAIN_PREFIX: &[u8] = b"atp/audit-chain/1\n";
const BATCH_PREFIX: &[u8] = b"atp/audit-batch/1\n";

/// The chain value before the first batch.
pub const GENESIS: Hash = [0u8; 32];

/// The stable event codes and their types (docs/audit.md lists each with when it is written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventCode {
    /// A caller presented credentials and they were accepted.
    AuthnSucceeded,
    /// A caller presented credentials and they were refused.
    AuthnFailed,
    /// An agent signed in with its DID (challenge-response session).
    SessionIssued,
    /// An authorization decision denied a request.
    AuthzDenied,
    /// The trust-anchor set was replaced.
    AnchorsChanged,
    /// Role bindings were added or removed.
    RoleBindingsChanged,
    /// An administrator read or ran an administrative operation without a stored change (role
    /// bindings listed, trust recomputed, trust configuration read, audit trail read).
    AdminAction,
    /// The node issued a credential.
    CredentialIssued,
    /// A credential's status changed (revoked, suspended, reinstated, or a message set).
    CredentialStatusChanged,
    /// An external issuer's signed status-list update was applied.
    StatusUpdateApplied,
    /// A key event (inception, rotation, deactivation) was accepted.
    KeyEventAccepted,
    /// A subject's personal data was erased.
    SubjectErased,
}

impl EventCode {
    /// Every code, for documentation and exhaustive tests.
    pub const ALL: [EventCode; 12] = [
        EventCode::AuthnSucceeded,
        EventCode::AuthnFailed,
        EventCode::SessionIssued,
        EventCode::AuthzDenied,
        EventCode::AnchorsChanged,
        EventCode::RoleBindingsChanged,
        EventCode::AdminAction,
        EventCode::CredentialIssued,
        EventCode::CredentialStatusChanged,
        EventCode::StatusUpdateApplied,
        EventCode::KeyEventAccepted,
        EventCode::SubjectErased,
    ];

    /// The stable dotted code stored in `code`.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventCode::AuthnSucceeded => "authn.succeeded",
            EventCode::AuthnFailed => "authn.failed",
            EventCode::SessionIssued => "session.issued",
            EventCode::AuthzDenied => "authz.denied",
            EventCode::AnchorsChanged => "anchors.changed",
            EventCode::RoleBindingsChanged => "role_bindings.changed",
            EventCode::AdminAction => "admin.action",
            EventCode::CredentialIssued => "credential.issued",
            EventCode::CredentialStatusChanged => "credential.status_changed",
            EventCode::StatusUpdateApplied => "status_update.applied",
            EventCode::KeyEventAccepted => "key_event.accepted",
            EventCode::SubjectErased => "subject.erased",
        }
    }

    /// The event's `type`: the category a report groups it under.
    pub fn event_type(&self) -> &'static str {
        match self {
            EventCode::AuthnSucceeded | EventCode::AuthnFailed | EventCode::SessionIssued => {
                "authentication"
            }
            EventCode::AuthzDenied => "authorization",
            EventCode::AnchorsChanged | EventCode::RoleBindingsChanged | EventCode::AdminAction => {
                "admin"
            }
            EventCode::CredentialIssued
            | EventCode::CredentialStatusChanged
            | EventCode::StatusUpdateApplied => "credential",
            EventCode::KeyEventAccepted => "identity",
            EventCode::SubjectErased => "erasure",
        }
    }

    /// Parses a stored code.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// A DID, `admin`, `anonymous`, or a keyed hash (`hmac-sha256:…`) of another identifier.
    pub id: String,
    /// `admin`, `anonymous`, `user` (an SSO or RBAC principal) or `agent` (a DID).
    pub kind: String,
    /// The tenant, when the principal has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// Where the request came from. Each field is a keyed hash when stored by the enterprise trail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// The peer's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The `user-agent` the client sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The mutual-TLS client certificate's fingerprint (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

/// What was acted on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `did`, `credential`, `status_list`, `role_binding`, `anchors`, `operation`, …
    pub kind: String,
    /// Its identifier.
    pub id: String,
}

/// How it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// `SUCCESS`, `DENIED` or `FAILURE`.
    pub result: String,
    /// The refusal's stable reason code, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One audit event (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// A UUIDv7, lowercase hex with hyphens.
    pub id: String,
    /// Unix milliseconds.
    pub time: i64,
    /// The stable code ([`EventCode::as_str`]).
    pub code: String,
    /// The code's type ([`EventCode::event_type`]).
    #[serde(rename = "type")]
    pub event_type: String,
    /// Who acted.
    pub actor: Actor,
    /// Where from.
    pub client: Client,
    /// What was acted on.
    pub target: Vec<Target>,
    /// How it ended.
    pub outcome: Outcome,
    /// The request's id, when the caller or the node gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The policy rule that decided (the operation checked, or the RBAC rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

fn invalid(reason: impl Into<String>) -> CoreError {
    CoreError::AuditEventInvalid(reason.into())
}

/// Whether `id` is a UUIDv7 in its lowercase hyphenated text form.
pub fn is_uuid_v7(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
        && b[14] == b'7'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// Formats 16 bytes as a UUIDv7: the first 48 bits are `unix_ms`, then the version and variant,
/// the rest is `random` (the caller's randomness; core has none of its own).
pub fn uuid_v7(unix_ms: u64, random: [u8; 10]) -> String {
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    b[6..].copy_from_slice(&random);
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

impl AuditEvent {
    /// Checks the fields' shapes and limits.
    pub fn check(&self) -> Result<()> {
        if !is_uuid_v7(&self.id) {
            return Err(invalid("id is not a lowercase UUIDv7"));
        }
        let code = EventCode::parse(&self.code)
            .ok_or_else(|| invalid(format!("unknown code {:?}", self.code)))?;
        if self.event_type != code.event_type() {
            return Err(invalid(format!("type of {} must be {}", self.code, code.event_type())));
        }
        if self.target.len() > MAX_TARGETS {
            return Err(invalid(format!("more than {MAX_TARGETS} targets")));
        }
        if !matches!(self.outcome.result.as_str(), "SUCCESS" | "DENIED" | "FAILURE") {
            return Err(invalid("outcome.result must be SUCCESS, DENIED or FAILURE"));
        }
        let strings = [&self.actor.id, &self.actor.kind, &self.outcome.result]
            .into_iter()
            .chain(self.actor.tenant.as_ref())
            .chain(self.client.ip.as_ref())
            .chain(self.client.user_agent.as_ref())
            .chain(self.client.certificate.as_ref())
            .chain(self.outcome.reason.as_ref())
            .chain(self.request_id.as_ref())
            .chain(self.rule.as_ref())
            .chain(self.target.iter().flat_map(|t| [&t.kind, &t.id]));
        for s in strings {
            if s.len() > MAX_FIELD_BYTES {
                return Err(invalid(format!("a field is longer than {MAX_FIELD_BYTES} bytes")));
            }
        }
        Ok(())
    }

    /// The stored form: the RFC 8785 canonical JSON of a checked event.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>> {
        self.check()?;
        let bytes = crate::jcs::canonicalize_serializable(self)?;
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(invalid(format!("longer than {MAX_EVENT_BYTES} bytes")));
        }
        Ok(bytes)
    }

    /// Parses a stored event: exactly the canonical JSON of a valid event, nothing else.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(invalid(format!("longer than {MAX_EVENT_BYTES} bytes")));
        }
        let event: AuditEvent =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("not an event: {e}")))?;
        if event.canonical_bytes()? != bytes {
            return Err(invalid("not in canonical form (RFC 8785)"));
        }
        Ok(event)
    }
}

/// `SHA-256("atp/audit-event/1\n" || canonical)`.
pub fn event_digest(canonical: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(EVENT_PREFIX);
    h.update(canonical);
    h.finalize().into()
}

/// The chain value after `digest`: `SHA-256("atp/audit-chain/1\n" || previous || digest)`.
pub fn chain_next(previous: &Hash, digest: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(CHAIN_PREFIX);
    h.update(previous);
    h.update(digest);
    h.finalize().into()
}

/// A sealed batch as stored and as committed to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditBatch {
    /// Its number, from 1, without gaps.
    pub number: u64,
    /// The first and last sequence numbers of its events.
    pub first_seq: u64,
    /// See `first_seq`.
    pub last_seq: u64,
    /// How many events it seals.
    pub count: u64,
    /// The previous batch's head ([`GENESIS`] for batch 1).
    pub previous: Hash,
    /// The chain value after its last event.
    pub head: Hash,
}

/// The data hash of an `audit-batch` log leaf:
/// `SHA-256("atp/audit-batch/1\n" || u64be number || u64be first_seq || u64be last_seq ||
/// u64be count || previous || head)`.
pub fn batch_data_hash(batch: &AuditBatch) -> Hash {
    let mut h = Sha256::new();
    h.update(BATCH_PREFIX);
    h.update(batch.number.to_be_bytes());
    h.update(batch.first_seq.to_be_bytes());
    h.update(batch.last_seq.to_be_bytes());
    h.update(batch.count.to_be_bytes());
    h.update(batch.previous);
    h.update(batch.head);
    h.finalize().into()
}

/// One stored row of a sealed batch, as read back for verification.
#[derive(Clone, Debug)]
pub struct SealedRow<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// The stored canonical event.
    pub body: &'a [u8],
    /// The digest stored when it was written.
    pub digest: Hash,
    /// The chain value stored when it was sealed.
    pub chain: Hash,
}

/// What [`verify_batch`] found wrong, at the first row that does not fit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Tamper {
    /// The row's body is not a canonical event, or does not hash to its stored digest.
    #[error("event {seq} was changed: {reason}")]
    Changed {
        /// The row.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// The row's chain value does not follow from the rows before it: a row before it was
    /// deleted, inserted or moved.
    #[error("event {seq} does not follow the one before it (a row was deleted, inserted or moved)")]
    Broken {
        /// The first row whose chain value does not follow.
        seq: u64,
    },
    /// The rows are not in increasing sequence order, or lie outside the batch's range.
    #[error("event {seq} is out of order or outside batch {batch}")]
    OutOfOrder {
        /// The row.
        seq: u64,
        /// The batch.
        batch: u64,
    },
    /// The batch's stored count or head differs from its rows: rows at its end were deleted,
    /// or the batch record itself was changed.
    #[error("batch {batch} does not match its events ({reason})")]
    Batch {
        /// The batch.
        batch: u64,
        /// Why.
        reason: String,
    },
}

/// Recomputes `batch` from its rows (in stored sequence order), starting from `batch.previous`.
/// The rows must be exactly the batch's; the first one that does not fit is named.
pub fn verify_batch(batch: &AuditBatch, rows: &[SealedRow<'_>]) -> std::result::Result<(), Tamper> {
    let mut chain = batch.previous;
    let mut last_seq = None;
    for row in rows {
        if row.seq < batch.first_seq
            || row.seq > batch.last_seq
            || last_seq.is_some_and(|last| row.seq <= last)
        {
            return Err(Tamper::OutOfOrder { seq: row.seq, batch: batch.number });
        }
        last_seq = Some(row.seq);
        if let Err(e) = AuditEvent::parse(row.body) {
            return Err(Tamper::Changed { seq: row.seq, reason: e.to_string() });
        }
        if event_digest(row.body) != row.digest {
            return Err(Tamper::Changed {
                seq: row.seq,
                reason: "its body does not hash to its digest".into(),
            });
        }
        chain = chain_next(&chain, &row.digest);
        if chain != row.chain {
            return Err(Tamper::Broken { seq: row.seq });
        }
    }
    if u64::try_from(rows.len()).ok() != Some(batch.count) {
        return Err(Tamper::Batch {
            batch: batch.number,
            reason: format!("{} events, {} sealed", rows.len(), batch.count),
        });
    }
    if chain != batch.head {
        return Err(Tamper::Batch { batch: batch.number, reason: "its head differs".into() });
    }
    Ok(())
}
