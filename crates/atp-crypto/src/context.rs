/// The purpose of an ATP signature. Each purpose has its own context string, so that a
/// signature made for one purpose never verifies for another.
///
/// The string is passed as the `ctx` input of ML-DSA and of the composite construction (where it
/// is also bound into the message representative that Ed25519 signs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningContext {
    /// Events of a `did:atp` key event log.
    Kel,
    /// Agent-to-agent envelopes.
    Envelope,
    /// Transparency-log checkpoints (the ML-DSA line).
    Checkpoint,
    /// Signed trust proofs.
    TrustProof,
    /// Challenge-response authentication and session tokens.
    Session,
    /// Status-list updates signed by external issuers.
    StatusList,
    /// Trust evidence (endorsements, receipts, incident reports).
    Evidence,
    /// Witness cosignatures on transparency-log checkpoints (the ML-DSA line).
    Cosignature,
}

impl SigningContext {
    /// Every context, for tests and documentation.
    pub const ALL: [SigningContext; 8] = [
        SigningContext::Kel,
        SigningContext::Envelope,
        SigningContext::Checkpoint,
        SigningContext::TrustProof,
        SigningContext::Session,
        SigningContext::StatusList,
        SigningContext::Evidence,
        SigningContext::Cosignature,
    ];

    /// The context string bytes, e.g. `atp/kel/v1`.
    pub fn as_bytes(&self) -> &'static [u8] {
        self.as_str().as_bytes()
    }

    /// The context string, e.g. `atp/kel/v1`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SigningContext::Kel => "atp/kel/v1",
            SigningContext::Envelope => "atp/envelope/v1",
            SigningContext::Checkpoint => "atp/checkpoint/v1",
            SigningContext::TrustProof => "atp/trust-proof/v1",
            SigningContext::Session => "atp/session/v1",
            SigningContext::StatusList => "atp/status-list/v1",
            SigningContext::Evidence => "atp/evidence/v1",
            SigningContext::Cosignature => "atp/cosignature/v1",
        }
    }
}
