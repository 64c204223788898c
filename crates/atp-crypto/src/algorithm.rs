use crate::CryptoError;

/// A signature algorithm identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AlgorithmId {
    /// Ed25519 (RFC 8032), strict verification.
    Ed25519,
    /// ML-DSA-44 (FIPS 204).
    MlDsa44,
    /// ML-DSA-65 (FIPS 204).
    MlDsa65,
    /// ML-DSA-87 (FIPS 204).
    MlDsa87,
    /// Composite `id-MLDSA44-Ed25519-SHA512`.
    MlDsa44Ed25519,
    /// Composite `id-MLDSA65-Ed25519-SHA512`, the ATP default.
    MlDsa65Ed25519,
    /// CRYSTALS-Dilithium3 round 3 (pre-FIPS 204). **Not ML-DSA**: standard ML-DSA-65
    /// verifiers reject its signatures. Only for peers that deployed it; no built-in policy
    /// accepts it.
    #[cfg(feature = "legacy-dilithium")]
    LegacyDilithium3,
}

impl AlgorithmId {
    /// The standard algorithms (FIPS 204, RFC 8032 and the composites), without the legacy one.
    pub const STANDARD: [AlgorithmId; 6] = [
        AlgorithmId::Ed25519,
        AlgorithmId::MlDsa44,
        AlgorithmId::MlDsa65,
        AlgorithmId::MlDsa87,
        AlgorithmId::MlDsa44Ed25519,
        AlgorithmId::MlDsa65Ed25519,
    ];

    /// Every algorithm compiled in.
    pub fn all() -> &'static [AlgorithmId] {
        #[cfg(feature = "legacy-dilithium")]
        {
            const ALL: [AlgorithmId; 7] = [
                AlgorithmId::Ed25519,
                AlgorithmId::MlDsa44,
                AlgorithmId::MlDsa65,
                AlgorithmId::MlDsa87,
                AlgorithmId::MlDsa44Ed25519,
                AlgorithmId::MlDsa65Ed25519,
                AlgorithmId::LegacyDilithium3,
            ];
            &ALL
        }
        #[cfg(not(feature = "legacy-dilithium"))]
        {
            &Self::STANDARD
        }
    }

    /// The ATP name used in key files, the CLI and protocol messages.
    pub fn name(&self) -> &'static str {
        match self {
            AlgorithmId::Ed25519 => "ed25519",
            AlgorithmId::MlDsa44 => "ml-dsa-44",
            AlgorithmId::MlDsa65 => "ml-dsa-65",
            AlgorithmId::MlDsa87 => "ml-dsa-87",
            AlgorithmId::MlDsa44Ed25519 => "mldsa44-ed25519",
            AlgorithmId::MlDsa65Ed25519 => "mldsa65-ed25519",
            #[cfg(feature = "legacy-dilithium")]
            AlgorithmId::LegacyDilithium3 => "legacy-dilithium3",
        }
    }

    /// Parse an ATP algorithm name (see [`AlgorithmId::name`]).
    pub fn from_name(name: &str) -> Result<Self, CryptoError> {
        AlgorithmId::all()
            .iter()
            .copied()
            .find(|a| a.name() == name)
            .ok_or_else(|| CryptoError::UnknownAlgorithm(name.to_owned()))
    }

    /// Whether this is a composite (ML-DSA + Ed25519) algorithm.
    pub fn is_composite(&self) -> bool {
        matches!(self, AlgorithmId::MlDsa44Ed25519 | AlgorithmId::MlDsa65Ed25519)
    }

    /// For a composite, its ML-DSA component algorithm.
    pub fn mldsa_component(&self) -> Option<AlgorithmId> {
        match self {
            AlgorithmId::MlDsa44Ed25519 => Some(AlgorithmId::MlDsa44),
            AlgorithmId::MlDsa65Ed25519 => Some(AlgorithmId::MlDsa65),
            _ => None,
        }
    }

    /// Public key length in bytes.
    pub const fn public_key_len(&self) -> usize {
        match self {
            AlgorithmId::Ed25519 => 32,
            AlgorithmId::MlDsa44 => 1312,
            AlgorithmId::MlDsa65 => 1952,
            AlgorithmId::MlDsa87 => 2592,
            AlgorithmId::MlDsa44Ed25519 => 1312 + 32,
            AlgorithmId::MlDsa65Ed25519 => 1952 + 32,
            #[cfg(feature = "legacy-dilithium")]
            AlgorithmId::LegacyDilithium3 => 1952,
        }
    }

    /// Signature length in bytes.
    pub const fn signature_len(&self) -> usize {
        match self {
            AlgorithmId::Ed25519 => 64,
            AlgorithmId::MlDsa44 => 2420,
            AlgorithmId::MlDsa65 => 3309,
            AlgorithmId::MlDsa87 => 4627,
            AlgorithmId::MlDsa44Ed25519 => 2420 + 64,
            AlgorithmId::MlDsa65Ed25519 => 3309 + 64,
            #[cfg(feature = "legacy-dilithium")]
            AlgorithmId::LegacyDilithium3 => 3293,
        }
    }

    /// Length of the private seed from which the key is derived. (The legacy scheme has no
    /// seed format: its "seed" is the expanded secret key followed by the public key.)
    pub fn seed_len(&self) -> usize {
        match self {
            AlgorithmId::MlDsa44Ed25519 | AlgorithmId::MlDsa65Ed25519 => 64,
            #[cfg(feature = "legacy-dilithium")]
            AlgorithmId::LegacyDilithium3 => 4032 + 1952,
            _ => 32,
        }
    }
}

impl std::fmt::Display for AlgorithmId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
