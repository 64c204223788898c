//! What one transparency-log leaf says: a kind and a 32-byte hash, never the data itself.
//!
//! The log holds hashes only (docs/protocol.md Part E, docs/design.md §8): personal data stays in the
//! store, where it can be erased, and the log keeps a commitment to it. A leaf **entry** (the
//! input of [`crate::tlog::leaf_hash`]) is
//!
//! ```text
//! entry = "atp/tlog/1/" || kind || 0x0A || data_hash        (data_hash: 32 bytes)
//! ```
//!
//! where `kind` is one of the ASCII strings of [`LeafKind`] (`kel`, `status`, `anchors`,
//! `evidence`, `status-update`). The kind is part of the hashed bytes, so a hash committed as one kind can never
//! be presented as another. The `data_hash` of each kind:
//!
//! | kind | data_hash |
//! |---|---|
//! | `kel` | `SHA-256(JCS({"event": …, "sig": …}))`: the hash inside the event digest (§B2.4) |
//! | `status` | `SHA-256("atp/status/1" ‖ u32be(len(list_id)) ‖ list_id ‖ u64be(index) ‖ u8(value) ‖ u64be(version))` |
//! | `anchors` | `SHA-256(JCS(sorted, de-duplicated array of anchor DIDs))` |
//! | `evidence` | `SHA-256(evidence body bytes)`; for `CredentialEvidence` derived from a verified credential, `SHA-256(JCS(credential))` |
//! | `status-update` | `SHA-256("atp/status-update/1" ‖ u32be(len(update)) ‖ update ‖ signature)` |
//!
//! A client that holds a KEL event therefore checks its inclusion with nothing but the event:
//! `leaf_hash(kel_entry(event))` and the inclusion proof against a signed checkpoint.
//!
//! The node's store and the SDK share these functions, so that a client computes exactly the
//! entry the node committed to.

use sha2::{Digest, Sha256};

use crate::CoreError;
use crate::kel::SignedEvent;
use crate::tlog::{Hash, leaf_hash};

type Result<T> = std::result::Result<T, CoreError>;

/// The prefix of every leaf entry.
pub const ENTRY_PREFIX: &[u8] = b"atp/tlog/1/";

/// The domain-separation prefix of a status-change data hash.
const STATUS_PREFIX: &[u8] = b"atp/status/1";

/// The domain-separation prefix of a signed status-list update's data hash.
const STATUS_UPDATE_PREFIX: &[u8] = b"atp/status-update/1";

/// The kind of state change a log leaf records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LeafKind {
    /// An accepted key event.
    Kel,
    /// A credential status change.
    Status,
    /// A replacement of the trust-anchor set.
    Anchors,
    /// A piece of trust evidence (for example a recorded KEL fork).
    Evidence,
    /// An external issuer's signed status-list update, applied as a whole.
    StatusUpdate,
    /// A change of the node's RBAC role bindings (enterprise), as the whole policy after it.
    RoleBindings,
    /// A sealed batch of the audit trail (enterprise; `crate::audit::batch_data_hash`).
    AuditBatch,
    /// The erasure of a subject's personal data (`crate::erasure::erasure_data_hash`).
    Erasure,
}

impl LeafKind {
    /// The stable ASCII name stored in the database and hashed into the entry.
    pub fn as_str(&self) -> &'static str {
        match self {
            LeafKind::Kel => "kel",
            LeafKind::Status => "status",
            LeafKind::Anchors => "anchors",
            LeafKind::Evidence => "evidence",
            LeafKind::StatusUpdate => "status-update",
            LeafKind::RoleBindings => "role-bindings",
            LeafKind::AuditBatch => "audit-batch",
            LeafKind::Erasure => "erasure",
        }
    }

    /// Parses a stored kind name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "kel" => Some(LeafKind::Kel),
            "status" => Some(LeafKind::Status),
            "anchors" => Some(LeafKind::Anchors),
            "evidence" => Some(LeafKind::Evidence),
            "status-update" => Some(LeafKind::StatusUpdate),
            "role-bindings" => Some(LeafKind::RoleBindings),
            "audit-batch" => Some(LeafKind::AuditBatch),
            "erasure" => Some(LeafKind::Erasure),
            _ => None,
        }
    }
}

impl std::fmt::Display for LeafKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The leaf entry bytes for a kind and data hash (see the module documentation).
pub fn leaf_entry(kind: LeafKind, data_hash: &Hash) -> Vec<u8> {
    let kind = kind.as_str().as_bytes();
    let mut out = Vec::with_capacity(ENTRY_PREFIX.len() + kind.len() + 1 + data_hash.len());
    out.extend_from_slice(ENTRY_PREFIX);
    out.extend_from_slice(kind);
    out.push(b'\n');
    out.extend_from_slice(data_hash);
    out
}

/// The RFC 9162 leaf hash of a kind and data hash: `leaf_hash(leaf_entry(kind, data_hash))`.
pub fn entry_leaf_hash(kind: LeafKind, data_hash: &Hash) -> Hash {
    leaf_hash(&leaf_entry(kind, data_hash))
}

fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// The data hash of a KEL event: `SHA-256(JCS(signed event))`.
pub fn kel_data_hash(event: &SignedEvent) -> Result<Hash> {
    Ok(kel_canonical_data_hash(&event.canonical_bytes()?))
}

/// [`kel_data_hash`] of an event whose canonical JSON (`JCS(signed event)`) is already at hand.
pub fn kel_canonical_data_hash(canonical_signed_event: &[u8]) -> Hash {
    sha256(canonical_signed_event)
}

/// The data hash of a status change: list `list_id`, entry `index` set to `value`, giving list
/// version `version`.
pub fn status_data_hash(list_id: &str, index: u64, value: u8, version: u64) -> Result<Hash> {
    let len = u32::try_from(list_id.len())
        .map_err(|_| CoreError::StatusListEntry("status list id longer than 2^32 bytes".into()))?;
    let mut h = Sha256::new();
    h.update(STATUS_PREFIX);
    h.update(len.to_be_bytes());
    h.update(list_id.as_bytes());
    h.update(index.to_be_bytes());
    h.update([value]);
    h.update(version.to_be_bytes());
    Ok(h.finalize().into())
}

/// The data hash of a trust-anchor set, given sorted and de-duplicated DIDs.
pub fn anchors_data_hash(sorted_anchors: &[String]) -> Result<Hash> {
    Ok(sha256(&crate::jcs::canonicalize_serializable(sorted_anchors)?))
}

/// The data hash of a signed status-list update:
/// `SHA-256("atp/status-update/1" || u32 len(update) || update || signature)`.
pub fn status_update_data_hash(update: &[u8], signature: &[u8]) -> Result<Hash> {
    let len = u32::try_from(update.len())
        .map_err(|_| CoreError::StatusUpdateMalformed("longer than 2^32 bytes".into()))?;
    let mut h = Sha256::new();
    h.update(STATUS_UPDATE_PREFIX);
    h.update(len.to_be_bytes());
    h.update(update);
    h.update(signature);
    Ok(h.finalize().into())
}

/// The data hash of a role-binding policy: `SHA-256(JCS({"revision": n, "bindings":
/// [[subject, role, domain], ...]}))` with the bindings sorted, so that anyone holding the
/// policy at that revision can recompute the leaf.
pub fn role_bindings_data_hash(
    revision: u64,
    sorted_bindings: &[(String, String, String)],
) -> Result<Hash> {
    let bindings: Vec<[&str; 3]> =
        sorted_bindings.iter().map(|(s, r, d)| [s.as_str(), r.as_str(), d.as_str()]).collect();
    let policy = serde_json::json!({ "revision": revision, "bindings": bindings });
    Ok(sha256(&crate::jcs::canonicalize(&policy)?))
}

/// The data hash of an evidence body.
pub fn evidence_data_hash(body: &[u8]) -> Hash {
    sha256(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entry_layout_is_pinned() {
        let e = leaf_entry(LeafKind::Kel, &[0xab; 32]);
        assert_eq!(&e[..15], b"atp/tlog/1/kel\n");
        assert_eq!(e.len(), 15 + 32);
        // Different kinds over the same data never share a leaf hash.
        assert_ne!(
            entry_leaf_hash(LeafKind::Kel, &[1; 32]),
            entry_leaf_hash(LeafKind::Status, &[1; 32])
        );
        for k in [
            LeafKind::Kel,
            LeafKind::Status,
            LeafKind::Anchors,
            LeafKind::Evidence,
            LeafKind::StatusUpdate,
        ] {
            assert_eq!(LeafKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn status_hash_is_length_prefixed() {
        // ("a", index 0x62…) must not collide with ("ab", …): the length prefix separates them.
        let a = status_data_hash("a", 0, 1, 1).unwrap();
        let b = status_data_hash("ab", 0, 1, 1).unwrap();
        assert_ne!(a, b);
        assert_ne!(status_data_hash("a", 0, 1, 1).ok(), status_data_hash("a", 0, 1, 2).ok());
    }
}
