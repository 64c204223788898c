//! A rustls-style crypto provider: a plain struct holding the signature algorithms a verifier
//! accepts. The list *is* the policy; anything not in it is refused with
//! [`CryptoError::AlgorithmNotAllowed`].
use crate::keys::verify_raw;
use crate::{AlgorithmId, CryptoError, PublicKey};
use std::fmt::Debug;

/// One signature algorithm's verification, as a trait object.
pub trait SignatureAlgorithm: Send + Sync + Debug {
    /// Which algorithm this is.
    fn id(&self) -> AlgorithmId;
    /// Verify `signature` over `message` with context `ctx` under raw `public_key` bytes.
    fn verify(
        &self,
        public_key: &[u8],
        message: &[u8],
        ctx: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError>;
}

#[derive(Debug)]
struct Builtin(AlgorithmId);

impl SignatureAlgorithm for Builtin {
    fn id(&self) -> AlgorithmId {
        self.0
    }
    fn verify(&self, pk: &[u8], msg: &[u8], ctx: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
        verify_raw(self.0, pk, msg, ctx, sig)
    }
}

/// The built-in algorithm objects.
pub mod algorithms {
    use super::*;

    /// Ed25519, strict.
    pub static ED25519: &dyn SignatureAlgorithm = &Builtin(AlgorithmId::Ed25519);
    /// ML-DSA-44.
    pub static ML_DSA_44: &dyn SignatureAlgorithm = &Builtin(AlgorithmId::MlDsa44);
    /// ML-DSA-65.
    pub static ML_DSA_65: &dyn SignatureAlgorithm = &Builtin(AlgorithmId::MlDsa65);
    /// ML-DSA-87.
    pub static ML_DSA_87: &dyn SignatureAlgorithm = &Builtin(AlgorithmId::MlDsa87);
    /// Composite `id-MLDSA44-Ed25519-SHA512`.
    pub static MLDSA44_ED25519: &dyn SignatureAlgorithm = &Builtin(AlgorithmId::MlDsa44Ed25519);
    /// Composite `id-MLDSA65-Ed25519-SHA512`.
    pub static MLDSA65_ED25519: &dyn SignatureAlgorithm = &Builtin(AlgorithmId::MlDsa65Ed25519);
    /// CRYSTALS-Dilithium3 round 3, **not** FIPS 204. In no built-in provider.
    #[cfg(feature = "legacy-dilithium")]
    pub static LEGACY_DILITHIUM3: &dyn SignatureAlgorithm = &Builtin(AlgorithmId::LegacyDilithium3);
}

/// The algorithms a verifier accepts.
#[derive(Debug, Clone)]
pub struct CryptoProvider {
    /// Accepted signature algorithms. Verification with any other algorithm is refused.
    pub signature_algorithms: Vec<&'static dyn SignatureAlgorithm>,
}

impl CryptoProvider {
    /// The ATP default, built once: what identities, envelopes, evidence and trust proofs are
    /// verified under. Callers on hot paths hold this reference instead of building a provider
    /// (and its list) per verification.
    pub fn quantum_safe() -> &'static CryptoProvider {
        static QUANTUM_SAFE: std::sync::OnceLock<CryptoProvider> = std::sync::OnceLock::new();
        QUANTUM_SAFE.get_or_init(Self::default_quantum_safe)
    }

    /// The ATP default: composite ML-DSA + Ed25519 only. This is what identities, envelopes and
    /// trust proofs are verified under.
    pub fn default_quantum_safe() -> Self {
        CryptoProvider {
            signature_algorithms: vec![algorithms::MLDSA65_ED25519, algorithms::MLDSA44_ED25519],
        }
    }

    /// Every standard algorithm (FIPS 204 ML-DSA, Ed25519 and the composites), for Data
    /// Integrity proof components and interoperability tools. Never the legacy Dilithium.
    pub fn all_standard() -> Self {
        CryptoProvider {
            signature_algorithms: vec![
                algorithms::MLDSA65_ED25519,
                algorithms::MLDSA44_ED25519,
                algorithms::ML_DSA_44,
                algorithms::ML_DSA_65,
                algorithms::ML_DSA_87,
                algorithms::ED25519,
            ],
        }
    }

    /// Whether `algorithm` is accepted.
    pub fn accepts(&self, algorithm: AlgorithmId) -> bool {
        self.find(algorithm).is_some()
    }

    fn find(&self, algorithm: AlgorithmId) -> Option<&'static dyn SignatureAlgorithm> {
        self.signature_algorithms.iter().copied().find(|a| a.id() == algorithm)
    }

    /// Verify under this policy.
    pub fn verify(
        &self,
        key: &PublicKey,
        message: &[u8],
        ctx: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let alg = self
            .find(key.algorithm())
            .ok_or(CryptoError::AlgorithmNotAllowed(key.algorithm().name()))?;
        alg.verify(key.as_bytes(), message, ctx, signature)
    }
}

impl Default for CryptoProvider {
    fn default() -> Self {
        Self::default_quantum_safe()
    }
}
