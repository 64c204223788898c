/// Errors from `atp-crypto`. Every variant has a stable code ([`CryptoError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The signature did not verify.
    #[error("{algorithm} signature is invalid")]
    InvalidSignature {
        /// Algorithm name.
        algorithm: &'static str,
    },
    /// One component of a composite signature did not verify. The composite is rejected.
    #[error("composite {algorithm}: the {component} component does not verify")]
    CompositeComponentInvalid {
        /// Composite algorithm name.
        algorithm: &'static str,
        /// `"ML-DSA"` or `"Ed25519"`.
        component: &'static str,
    },
    /// A signature had the wrong length for its algorithm.
    #[error("{algorithm} signature must be {expected} bytes, got {actual}")]
    SignatureLength {
        /// Algorithm name.
        algorithm: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        actual: usize,
    },
    /// A key had the wrong length or encoding for its algorithm.
    #[error("invalid {algorithm} key: {reason}")]
    InvalidKey {
        /// Algorithm name.
        algorithm: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The context string is longer than 255 bytes.
    #[error("context is {0} bytes; at most 255 are allowed")]
    ContextTooLong(usize),
    /// Pure Ed25519 has no context input, so a non-empty context cannot be honoured.
    #[error("{0} does not take a context string; use a composite algorithm for domain separation")]
    ContextUnsupported(&'static str),
    /// The algorithm is not in the verifier's policy.
    #[error("algorithm {0} is not accepted by this verifier's policy")]
    AlgorithmNotAllowed(&'static str),
    /// An algorithm name was not recognised.
    #[error("unknown algorithm {0:?}")]
    UnknownAlgorithm(String),
    /// A Multikey string could not be decoded.
    #[error("invalid Multikey: {0}")]
    Multikey(String),
    /// A key file could not be read or written.
    #[error("key file: {0}")]
    KeyFile(String),
    /// The passphrase does not decrypt the key file (or the file was altered).
    #[error("key file: wrong passphrase or corrupted file")]
    KeyFileDecrypt,
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Rng(String),
    /// Sealed data (`crate::sealing`) is malformed, was altered, or belongs to another key or
    /// record.
    #[error("sealed data: {0}")]
    SealedData(&'static str),
    /// A batch verification had failing items.
    #[error("batch verification failed for items {failed:?}")]
    BatchFailed {
        /// Indices of the failing items, ascending.
        failed: Vec<usize>,
    },
}

impl CryptoError {
    /// A stable, upper-snake-case code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            CryptoError::InvalidSignature { .. } => "SIGNATURE_INVALID",
            CryptoError::CompositeComponentInvalid { .. } => "SIGNATURE_COMPONENT_INVALID",
            CryptoError::SignatureLength { .. } => "SIGNATURE_LENGTH",
            CryptoError::InvalidKey { .. } => "KEY_INVALID",
            CryptoError::ContextTooLong(_) => "CONTEXT_TOO_LONG",
            CryptoError::ContextUnsupported(_) => "CONTEXT_UNSUPPORTED",
            CryptoError::AlgorithmNotAllowed(_) => "ALGORITHM_NOT_ALLOWED",
            CryptoError::UnknownAlgorithm(_) => "ALGORITHM_UNKNOWN",
            CryptoError::Multikey(_) => "MULTIKEY_INVALID",
            CryptoError::KeyFile(_) => "KEY_FILE_INVALID",
            CryptoError::KeyFileDecrypt => "KEY_FILE_DECRYPT",
            CryptoError::Rng(_) => "RNG_FAILURE",
            CryptoError::BatchFailed { .. } => "BATCH_FAILED",
            CryptoError::SealedData(_) => "SEALED_DATA_INVALID",
        }
    }
}
