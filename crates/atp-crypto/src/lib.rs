//! Cryptography for the Agent Trust Protocol.
//!
//! * Ed25519 ([`ed25519_dalek`], strict verification).
//! * ML-DSA-44/65/87, FIPS 204 final, with context strings: verified with [`libcrux_ml_dsa`],
//!   signed with PQClean ([`pqcrypto_mldsa`]), both AVX2 when the CPU has it; expanded keys are
//!   derived from 32-byte seeds with [`fips204`]. PQClean's own verifier is never used: it is not
//!   FIPS 204 on the edge cases (docs/protocol.md §1.5).
//! * The composite signatures `id-MLDSA65-Ed25519-SHA512` and `id-MLDSA44-Ed25519-SHA512` of
//!   draft-ietf-lamps-pq-composite-sigs. **Both components must verify**: there is no code path
//!   that accepts one component alone for a composite key.
//! * Multikey encodings, a versioned key-file format (optionally Argon2id + XChaCha20-Poly1305),
//!   a batch verifier, and a rustls-style [`CryptoProvider`] whose list of algorithms *is* the
//!   verifier's policy.
//! * Sealing of personal data at rest under a per-subject data key (ChaCha20-Poly1305,
//!   [`sealing`]), so that destroying the key erases the data wherever copies of it lie.
//!
//! Secret keys are zeroized on drop, never printed by `Debug`, and compared in constant time.
#![forbid(unsafe_code)]

mod algorithm;
pub mod batch;
mod composite;
mod context;
mod ed25519;
mod error;
pub mod keyfile;
mod keys;
#[cfg(feature = "legacy-dilithium")]
mod legacy;
mod mldsa;
pub mod multikey;
mod provider;
pub mod sealing;

pub use algorithm::AlgorithmId;
pub use composite::{COMPOSITE_PREFIX, composite_message_representative};
pub use context::SigningContext;
pub use error::CryptoError;
pub use keys::{PublicKey, SigningKey};
pub use provider::{CryptoProvider, SignatureAlgorithm, algorithms};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Fill `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Rng(e.to_string()))
}
