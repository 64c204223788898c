//! Evidence that a node showed two views of its transparency log that cannot both be true
//! (docs/protocol.md §E4): two checkpoint notes the node signed, and the node's own key event
//! log, so that anyone can check the evidence offline, with nothing but this file.
//!
//! - **Proven** ([`Misbehaviour::Fork`]): two checkpoints of one tree size with different
//!   roots. An honest log has one tree per size, so the pair alone proves a fork.
//! - **Unresolved, not proof** ([`Misbehaviour::Unproven`]): checkpoints of different sizes for which the
//!   node gave no valid consistency proof (it shrank its log, replayed an older checkpoint, or
//!   sent a proof that does not verify). The later tree may still be an extension of the
//!   earlier one; anyone can settle it by asking for the consistency proof, which a forked log
//!   can never produce. Evidence that carries a proof which does verify is refused: it proves
//!   nothing.

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, VerifierKey, verify_note_with};
use crate::error::CoreError;
use crate::kel::{KeyEventLog, SignedEvent};
use crate::tlog;

/// The `type` member of every evidence file.
pub const LOG_EVIDENCE_TYPE: &str = "atp-log-evidence/1";
/// The most key events an evidence file may carry: as many as a key event log may hold, so a
/// node cannot make evidence against it unverifiable by padding its own log.
pub const MAX_EVIDENCE_KEL_EVENTS: usize = crate::kel::MAX_EVENTS;
/// The largest evidence file parsed: room for a full key event log and two notes.
pub const MAX_EVIDENCE_BYTES: usize = 96 << 20;
/// The most hashes in an evidence file's consistency path (a proof for any u64 tree size has at
/// most 2 × 64).
pub const MAX_EVIDENCE_PATH: usize = 128;

/// Two signed checkpoints that the node's log cannot both have produced, and the node's key
/// event log that authenticates them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogEvidence {
    /// Always [`LOG_EVIDENCE_TYPE`].
    #[serde(rename = "type")]
    pub evidence_type: String,
    /// The node's `did:atp`.
    pub node_did: String,
    /// The node's key event log; its current key signed both notes.
    pub node_kel: Vec<SignedEvent>,
    /// The checkpoint seen first (from gossip between two clients: the smaller tree).
    pub earlier: String,
    /// The checkpoint seen later (from gossip: the larger tree).
    pub later: String,
    /// The consistency path the node answered with, hex, when it answered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_path: Option<Vec<String>>,
    /// What the client observed, for people; not part of the proof.
    pub observed: String,
}

/// What verified evidence shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Two trees of one size with different roots, both signed by the node: a proven fork.
    Fork {
        /// The tree size.
        size: u64,
    },
    /// Two signed trees of different sizes without a valid consistency proof between them.
    Unproven {
        /// The smaller tree size.
        smaller: u64,
        /// The larger tree size.
        larger: u64,
        /// True when the smaller tree is the one labelled `later`: the log went backwards,
        /// *as the reporter tells it*. The order is not signed, so this is a claim, and
        /// unresolved evidence is never proof by itself.
        went_backwards: bool,
    },
}

impl LogEvidence {
    /// Evidence about `earlier` and `later`, two notes signed by the node `node_did`.
    pub fn new(
        node_did: &str,
        node_kel: Vec<SignedEvent>,
        earlier: &str,
        later: &str,
        consistency_path: Option<&[tlog::Hash]>,
        observed: impl Into<String>,
    ) -> Self {
        LogEvidence {
            evidence_type: LOG_EVIDENCE_TYPE.to_owned(),
            node_did: node_did.to_owned(),
            node_kel,
            earlier: earlier.to_owned(),
            later: later.to_owned(),
            consistency_path: consistency_path.map(|p| p.iter().map(hex::encode).collect()),
            observed: observed.into(),
        }
    }

    /// Parses an evidence file (JSON).
    pub fn from_json(bytes: &[u8]) -> Result<Self, CoreError> {
        if bytes.len() > MAX_EVIDENCE_BYTES {
            return Err(CoreError::LogEvidence(format!(
                "{} bytes, more than the {MAX_EVIDENCE_BYTES}-byte limit",
                bytes.len()
            )));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| CoreError::LogEvidence(format!("not evidence: {e}")))
    }

    /// The evidence as pretty JSON.
    pub fn to_json(&self) -> Result<Vec<u8>, CoreError> {
        serde_json::to_vec_pretty(self).map_err(|e| CoreError::LogEvidence(e.to_string()))
    }

    /// Checks the evidence offline: the node's key event log verifies for its DID, both notes
    /// carry valid signatures from the node's current key under one origin, and the two trees
    /// cannot belong to one append-only log (as far as the evidence shows).
    pub fn verify(&self) -> Result<(Misbehaviour, Checkpoint, Checkpoint), CoreError> {
        let invalid = |m: &str| CoreError::LogEvidence(m.to_owned());
        if self.evidence_type != LOG_EVIDENCE_TYPE {
            return Err(invalid("unknown evidence type"));
        }
        if self.node_kel.len() > MAX_EVIDENCE_KEL_EVENTS {
            return Err(invalid("the node's key event log is too long"));
        }
        let state = KeyEventLog::default().verify_did(&self.node_did, &self.node_kel)?;
        let (mldsa, ed) = state
            .current_key
            .components()
            .ok_or_else(|| invalid("the node key is not composite"))?;
        let origin = crate::checkpoint::SignedNote::parse(&self.earlier)?;
        let origin = Checkpoint::parse_body(&origin.text)?.origin;
        let ed = VerifierKey::new(&origin, ed)?;
        let mldsa = VerifierKey::new(&origin, mldsa)?;
        let earlier = verify_note_with(&self.earlier, &ed, &mldsa)?;
        let later = verify_note_with(&self.later, &ed, &mldsa)?;
        if earlier.origin != later.origin {
            return Err(invalid("the checkpoints are of two logs"));
        }
        if earlier.size == later.size {
            return if earlier.root_hash == later.root_hash {
                Err(invalid("the checkpoints are of one tree"))
            } else {
                Ok((Misbehaviour::Fork { size: earlier.size }, earlier, later))
            };
        }
        let (small, large) =
            if earlier.size < later.size { (&earlier, &later) } else { (&later, &earlier) };
        if let Some(path) = &self.consistency_path {
            if path.len() > MAX_EVIDENCE_PATH {
                return Err(invalid("the consistency path is too long"));
            }
            let path = path
                .iter()
                .map(|h| {
                    let bytes = hex::decode(h).map_err(|_| invalid("a path hash is not hex"))?;
                    <[u8; 32]>::try_from(bytes).map_err(|_| invalid("a path hash is not 32 bytes"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let consistent = tlog::verify_consistency(
                small.size,
                large.size,
                &small.root_hash,
                &large.root_hash,
                &path,
            );
            if consistent.is_ok() {
                return Err(invalid("the consistency proof verifies: the trees are consistent"));
            }
        }
        // A tree of size 0 is a prefix of every tree, whichever order a reporter claims.
        let went_backwards = later.size < earlier.size;
        if small.size == 0 {
            return Err(invalid("an empty tree is consistent with every tree"));
        }
        let misbehaviour =
            Misbehaviour::Unproven { smaller: small.size, larger: large.size, went_backwards };
        Ok((misbehaviour, earlier, later))
    }
}
