//! The evidence graph: the live evidence, held compactly.

use std::collections::{BTreeMap, HashMap, HashSet};

use atp_core::evidence::{
    CREDENTIAL_ISSUER_CAPABILITY, EvidenceKind as WireKind, Outcome, VerifiedEvidence,
};

use crate::TrustError;

pub use atp_core::evidence::Severity;

/// The kind of a signed edge, with what decides its weight and sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EvidenceKind {
    /// An endorsement (any capability but the issuer capability).
    Endorsement,
    /// An endorsement with capability `atp:credential-issuer`: by an anchor, it makes the
    /// subject a credential issuer that the anchors trust. It also counts as an endorsement.
    IssuerEndorsement,
    /// A successful, co-signed interaction receipt.
    ReceiptSuccess,
    /// A failed, co-signed interaction receipt (negative).
    ReceiptFailure,
    /// An incident report (negative).
    Incident(Severity),
}

/// One piece of verified, signed evidence, as the engine needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// `SHA-256(JCS(body))`: inserting the same hash twice is a no-op.
    pub content_hash: [u8; 32],
    /// The issuer's DID.
    pub issuer: String,
    /// The subject's DID.
    pub subject: String,
    /// The kind.
    pub kind: EvidenceKind,
    /// `created`, Unix milliseconds.
    pub created_ms: i64,
}

impl From<&VerifiedEvidence> for Evidence {
    fn from(v: &VerifiedEvidence) -> Self {
        let b = &v.body;
        let kind = match b.kind {
            WireKind::Endorsement
                if b.capability.as_deref() == Some(CREDENTIAL_ISSUER_CAPABILITY) =>
            {
                EvidenceKind::IssuerEndorsement
            }
            WireKind::Endorsement => EvidenceKind::Endorsement,
            WireKind::InteractionReceipt => match b.outcome {
                Some(Outcome::Failure) => EvidenceKind::ReceiptFailure,
                _ => EvidenceKind::ReceiptSuccess,
            },
            WireKind::IncidentReport => {
                EvidenceKind::Incident(b.severity.unwrap_or(Severity::High))
            }
        };
        Evidence {
            content_hash: v.content_hash,
            issuer: b.issuer.clone(),
            subject: b.subject.clone(),
            kind,
            created_ms: v.created_ms,
        }
    }
}

/// A credential that the node verified, as evidence from its issuer about its subject. It
/// counts while `valid_from_ms <= now < valid_until_ms` and it is not revoked or suspended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialEvidence {
    /// A stable identity (the credential's `id`, or a hash of it): setting the same id again
    /// replaces the record (for example when it is revoked).
    pub id: String,
    /// The issuer's DID.
    pub issuer: String,
    /// The subject's DID.
    pub subject: String,
    /// `validFrom`, Unix milliseconds.
    pub valid_from_ms: i64,
    /// `validUntil`, Unix milliseconds, if any.
    pub valid_until_ms: Option<i64>,
    /// Revoked or suspended.
    pub revoked: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct EdgeRecord {
    pub(crate) src: u32,
    pub(crate) dst: u32,
    pub(crate) created_ms: i64,
    pub(crate) kind: EvidenceKind,
}

#[derive(Clone, Debug)]
pub(crate) struct CredentialRecord {
    pub(crate) issuer: u32,
    pub(crate) subject: u32,
    pub(crate) valid_from_ms: i64,
    pub(crate) valid_until_ms: Option<i64>,
    pub(crate) revoked: bool,
}

/// The live evidence: DIDs interned to `u32` ids, signed evidence as 24-byte records, and
/// credentials and deactivations beside them. Insertion is idempotent.
#[derive(Clone, Debug, Default)]
pub struct EvidenceGraph {
    pub(crate) ids: HashMap<Box<str>, u32>,
    pub(crate) dids: Vec<Box<str>>,
    pub(crate) edges: Vec<EdgeRecord>,
    seen: HashSet<[u8; 32]>,
    pub(crate) credentials: BTreeMap<String, CredentialRecord>,
    pub(crate) deactivated: HashMap<u32, i64>,
    pub(crate) forked: HashSet<u32>,
}

impl EvidenceGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty graph with room for `nodes` DIDs and `edges` pieces of evidence.
    pub fn with_capacity(nodes: usize, edges: usize) -> Self {
        EvidenceGraph {
            ids: HashMap::with_capacity(nodes),
            dids: Vec::with_capacity(nodes),
            edges: Vec::with_capacity(edges),
            seen: HashSet::with_capacity(edges),
            ..Self::default()
        }
    }

    /// The id of `did`, adding it if it is new.
    pub fn intern(&mut self, did: &str) -> Result<u32, TrustError> {
        if let Some(id) = self.ids.get(did) {
            return Ok(*id);
        }
        let id = u32::try_from(self.dids.len())
            .ok()
            .filter(|id| *id < u32::MAX)
            .ok_or(TrustError::Capacity { what: "DIDs", limit: u64::from(u32::MAX) })?;
        let boxed: Box<str> = did.into();
        self.ids.insert(boxed.clone(), id);
        self.dids.push(boxed);
        Ok(id)
    }

    /// Add one piece of signed evidence. Returns `false` (and changes nothing) when evidence with
    /// the same content hash is already present. Self-evidence is refused.
    pub fn insert(&mut self, evidence: &Evidence) -> Result<bool, TrustError> {
        if evidence.issuer == evidence.subject {
            return Err(TrustError::SelfEvidence(evidence.issuer.clone()));
        }
        if self.seen.contains(&evidence.content_hash) {
            return Ok(false);
        }
        let src = self.intern(&evidence.issuer)?;
        let dst = self.intern(&evidence.subject)?;
        self.insert_ids(evidence.content_hash, src, dst, evidence.kind, evidence.created_ms)
    }

    /// [`EvidenceGraph::insert`] with interned ids (for bulk loading).
    pub fn insert_ids(
        &mut self,
        content_hash: [u8; 32],
        src: u32,
        dst: u32,
        kind: EvidenceKind,
        created_ms: i64,
    ) -> Result<bool, TrustError> {
        if src == dst {
            return Err(TrustError::SelfEvidence(self.did(src).unwrap_or_default().to_owned()));
        }
        if self.edges.len() >= u32::MAX as usize {
            return Err(TrustError::Capacity { what: "edges", limit: u64::from(u32::MAX) });
        }
        if !self.seen.insert(content_hash) {
            return Ok(false);
        }
        self.edges.push(EdgeRecord { src, dst, created_ms, kind });
        Ok(true)
    }

    /// Add or replace a credential (by id). Self-issued credentials are refused.
    pub fn set_credential(&mut self, credential: &CredentialEvidence) -> Result<(), TrustError> {
        if credential.issuer == credential.subject {
            return Err(TrustError::SelfEvidence(credential.issuer.clone()));
        }
        let record = CredentialRecord {
            issuer: self.intern(&credential.issuer)?,
            subject: self.intern(&credential.subject)?,
            valid_from_ms: credential.valid_from_ms,
            valid_until_ms: credential.valid_until_ms,
            revoked: credential.revoked,
        };
        self.credentials.insert(credential.id.clone(), record);
        Ok(())
    }

    /// Mark the credential `id` revoked (or suspended). Returns whether it was present.
    pub fn revoke_credential(&mut self, id: &str) -> bool {
        self.credentials.get_mut(id).map(|c| c.revoked = true).is_some()
    }

    /// Record that `did` was deactivated at `at_ms`: from then on, evidence from or about it
    /// counts for nothing and its level is 0.
    pub fn deactivate(&mut self, did: &str, at_ms: i64) -> Result<(), TrustError> {
        let id = self.intern(did)?;
        let at = self.deactivated.get(&id).map_or(at_ms, |prev| (*prev).min(at_ms));
        self.deactivated.insert(id, at);
        Ok(())
    }

    /// Record that `did`'s key event log forked (docs/protocol.md B2.7): its level is 0 and
    /// evidence from or about it counts for nothing, whenever it was made.
    pub fn record_fork(&mut self, did: &str) -> Result<(), TrustError> {
        let id = self.intern(did)?;
        self.forked.insert(id);
        Ok(())
    }

    /// The DID of `id`.
    pub fn did(&self, id: u32) -> Option<&str> {
        self.dids.get(id as usize).map(AsRef::as_ref)
    }

    /// The id of `did`, if present.
    pub fn id(&self, did: &str) -> Option<u32> {
        self.ids.get(did).copied()
    }

    /// DIDs known.
    pub fn node_count(&self) -> usize {
        self.dids.len()
    }

    /// Signed evidence held (credentials not included).
    pub fn evidence_count(&self) -> usize {
        self.edges.len()
    }

    /// Credentials held.
    pub fn credential_count(&self) -> usize {
        self.credentials.len()
    }
}
