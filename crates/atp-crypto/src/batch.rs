//! Batch verification: many signatures checked in one call, with every failing item named.
//!
//! Each item gets exactly the single verification of its algorithm, under a [`CryptoProvider`]
//! policy. Ed25519 is deliberately not checked with a batched multiscalar equation: dalek's
//! batch equation is cofactorless with 128-bit weights derived from the inputs, so a signer who
//! grinds messages can make it accept a signature whose `R` carries a small torsion component
//! that the strict single verification refuses (for a component of order 2, whenever the weight
//! is even). A batch must never accept what a single verification refuses, or two verifiers of
//! the same signature could disagree; `tests/crypto/signatures.rs` builds such a signature.
use crate::{CryptoError, CryptoProvider, PublicKey};

/// One signature to check.
#[derive(Debug, Clone)]
pub struct BatchItem<'a> {
    /// The signer's key.
    pub key: &'a PublicKey,
    /// The signed message.
    pub message: &'a [u8],
    /// The context string.
    pub ctx: &'a [u8],
    /// The signature.
    pub signature: &'a [u8],
}

/// Verify every item; `Err(CryptoError::BatchFailed { failed })` lists the failing indices.
pub fn verify_batch(provider: &CryptoProvider, items: &[BatchItem<'_>]) -> Result<(), CryptoError> {
    let failed: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| {
            provider.verify(item.key, item.message, item.ctx, item.signature).is_err()
        })
        .map(|(i, _)| i)
        .collect();
    if failed.is_empty() { Ok(()) } else { Err(CryptoError::BatchFailed { failed }) }
}
