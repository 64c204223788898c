//! The single error type of `atp-trust`.

/// Errors of the trust engine. Every variant has a stable code ([`TrustError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// A configuration constant is out of its allowed range.
    #[error("invalid trust configuration: {0}")]
    InvalidConfig(String),
    /// Evidence whose issuer is its subject; it counts for nothing and is not stored.
    #[error("self-evidence by {0} counts for nothing")]
    SelfEvidence(String),
    /// The graph would exceed its compact representation (`u32` node and edge indices).
    #[error("the evidence graph is full: more than {limit} {what}")]
    Capacity {
        /// What overflowed.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A stored snapshot does not parse, or breaks one of the engine's rules.
    #[error("invalid trust snapshot: {0}")]
    SnapshotInvalid(String),
}

impl TrustError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TrustError::InvalidConfig(_) => "TRUST_CONFIG_INVALID",
            TrustError::SelfEvidence(_) => "EVIDENCE_SELF",
            TrustError::Capacity { .. } => "TRUST_GRAPH_CAPACITY",
            TrustError::SnapshotInvalid(_) => "TRUST_SNAPSHOT_INVALID",
        }
    }
}
