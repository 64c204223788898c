//! Erasure of a subject's personal data by crypto-shredding (docs/audit.md, "Erasure").
//!
//! The rules every store and verifier shares:
//!
//! - **Sealing.** A trust-evidence body about a subject is stored sealed under the subject's
//!   data key, bound to the record by [`sealed_evidence_record`], so sealed bytes copied to
//!   another row do not open.
//! - **The log.** An erasure appends an `erasure` leaf whose data hash is
//!   [`erasure_data_hash`]: the log keeps proof that the erasure happened, not what was erased.
//!   Erasing never changes an earlier leaf, so every inclusion and consistency proof still
//!   verifies.

use sha2::{Digest, Sha256};

use crate::tlog::Hash;

const ERASURE_PREFIX: &[u8] = b"atp/erasure/1\n";
const SEALED_EVIDENCE_PREFIX: &[u8] = b"atp/sealed-evidence/1\n";

/// The data hash of an `erasure` log leaf:
/// `SHA-256("atp/erasure/1\n" || u32be(len(subject)) || subject || i64be(erased_at_ms) ||
/// u64be(evidence_erased))`.
pub fn erasure_data_hash(subject: &str, erased_at_ms: i64, evidence_erased: u64) -> Hash {
    let mut h = Sha256::new();
    h.update(ERASURE_PREFIX);
    // A DID is at most a few hundred bytes; saturating keeps the rule total.
    h.update(u32::try_from(subject.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.update(subject.as_bytes());
    h.update(erased_at_ms.to_be_bytes());
    h.update(evidence_erased.to_be_bytes());
    h.finalize().into()
}

/// The associated data that binds a sealed trust-evidence body to its record:
/// `"atp/sealed-evidence/1\n" || content_hash`.
pub fn sealed_evidence_record(content_hash: &Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEALED_EVIDENCE_PREFIX.len() + content_hash.len());
    out.extend_from_slice(SEALED_EVIDENCE_PREFIX);
    out.extend_from_slice(content_hash);
    out
}
