//! The ATP trust engine, pure: no I/O, no clock of its own (docs/design.md §7; the model is written out
//! for relying parties in `docs/trust.md`).
//!
//! - [`EvidenceGraph`] holds the live evidence compactly: DIDs interned to `u32` ids, one small
//!   record per signed piece of evidence (idempotent by content hash), credentials by id, and
//!   deactivation times.
//! - [`compute`] runs a personalised PageRank (EigenTrust with pre-trusted peers) seeded at the
//!   operator's trust anchors, by sparse power iteration over a compressed in-edge matrix, with
//!   exponential time decay, negative evidence that weighs more than positive evidence, and the
//!   hard gates. It returns an immutable [`Snapshot`] that serves reads and explanations until
//!   the next computation.
//! - [`TrustConfig`] holds every constant, with documented defaults.
//!
//! Results do not depend on the order in which evidence was inserted: nodes are ranked by DID and
//! edges sorted before any floating-point sum.
#![forbid(unsafe_code)]

mod compute;
mod config;
mod error;
mod graph;

pub use compute::{
    Explanation, Gate, PathEdge, Snapshot, TrustPath, TrustResult, compute, level_name,
};
pub use config::TrustConfig;
pub use error::TrustError;
pub use graph::{CredentialEvidence, Evidence, EvidenceGraph, EvidenceKind, Severity};
