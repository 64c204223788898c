//! [`AcceptedEvent`]: a key event the verifier accepted onto a log, with everything a store
//! persists, computed once.
//!
//! [`KeyEventLog::accept`] is the one judge of a KEL append: it checks every rule (sequence,
//! inception, DID binding, hash link, pre-rotation, limits, signature) against the verified
//! head, and returns the canonical signed event, its digest and its transparency-log data
//! hash. A store takes an `AcceptedEvent` and writes it if the stored head is still the one it
//! extends ([`AcceptedEvent::extends`]); it neither re-derives those bytes nor re-checks the
//! rules. Nothing outside this crate can build an `AcceptedEvent`.

use crate::CoreError;
use crate::kel::{EventType, KelState, KeyEventLog, SignedEvent, check_did};
use crate::log_entry::{LeafKind, entry_leaf_hash, kel_canonical_data_hash};
use crate::tlog::Hash;

/// A key event accepted onto the log of [`AcceptedEvent::did`] by [`KeyEventLog::accept`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedEvent {
    event: SignedEvent,
    canonical: Vec<u8>,
    data_hash: Hash,
    extends: Option<(u64, String)>,
    state: KelState,
}

impl AcceptedEvent {
    /// The signed event.
    pub fn event(&self) -> &SignedEvent {
        &self.event
    }

    /// The DID whose log it extends (or starts).
    pub fn did(&self) -> &str {
        &self.state.did
    }

    /// Its sequence number.
    pub fn sequence(&self) -> u64 {
        self.event.event.s
    }

    /// Its type.
    pub fn event_type(&self) -> EventType {
        self.event.event.t
    }

    /// Its `ts`, as signed.
    pub fn timestamp(&self) -> &str {
        &self.event.event.ts
    }

    /// The canonical signed event, `JCS({"event", "sig"})`: the bytes a store keeps.
    pub fn canonical_bytes(&self) -> &[u8] {
        &self.canonical
    }

    /// The event digest (what the next event names in `p`).
    pub fn digest(&self) -> &str {
        &self.state.last_digest
    }

    /// The transparency-log data hash, `SHA-256(JCS(signed event))`.
    pub fn data_hash(&self) -> &Hash {
        &self.data_hash
    }

    /// The RFC 9162 leaf hash of its `kel` leaf.
    pub fn leaf_hash(&self) -> Hash {
        entry_leaf_hash(LeafKind::Kel, &self.data_hash)
    }

    /// The head it was verified against, `(sequence, digest)`; `None` for an inception. A store
    /// appends it only while that is still the stored head.
    pub fn extends(&self) -> Option<(u64, &str)> {
        self.extends.as_ref().map(|(sequence, digest)| (*sequence, digest.as_str()))
    }

    /// The verified state of the log after it.
    pub fn state(&self) -> &KelState {
        &self.state
    }
}

impl KeyEventLog {
    /// Accepts `event` onto the log of `did` whose verified state is `head` (`None`: `event`
    /// must be the inception of `did`). The checks are those of [`KeyEventLog::append`] (and,
    /// for an inception, of [`KeyEventLog::verify_did`]), with the same errors.
    pub fn accept(
        &self,
        did: &str,
        head: Option<&KelState>,
        event: SignedEvent,
    ) -> Result<AcceptedEvent, CoreError> {
        let index = self.next_index(head)?;
        let (state, canonical) = self.check_event_keeping_bytes(index, head, &event)?;
        check_did(did, &state)?;
        let data_hash = kel_canonical_data_hash(&canonical);
        let extends = head.map(|h| (h.sequence, h.last_digest.clone()));
        Ok(AcceptedEvent { event, canonical, data_hash, extends, state })
    }
}
