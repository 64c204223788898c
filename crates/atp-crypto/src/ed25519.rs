//! Ed25519 through `ed25519-dalek`, always with strict verification (rejects non-canonical
//! encodings and small-order keys and `R` points).
use crate::CryptoError;
use ed25519_dalek::{Signer, VerifyingKey};

const NAME: &str = "Ed25519";

pub(crate) fn signing_key_from_seed(seed: &[u8]) -> Result<ed25519_dalek::SigningKey, CryptoError> {
    let seed: &[u8; 32] = seed.try_into().map_err(|_| CryptoError::InvalidKey {
        algorithm: NAME,
        reason: format!("seed must be 32 bytes, got {}", seed.len()),
    })?;
    Ok(ed25519_dalek::SigningKey::from_bytes(seed))
}

pub(crate) fn sign(key: &ed25519_dalek::SigningKey, msg: &[u8]) -> [u8; 64] {
    key.sign(msg).to_bytes()
}

pub(crate) fn parse_public(public_key: &[u8]) -> Result<VerifyingKey, CryptoError> {
    let bytes: &[u8; 32] = public_key.try_into().map_err(|_| CryptoError::InvalidKey {
        algorithm: NAME,
        reason: format!("public key must be 32 bytes, got {}", public_key.len()),
    })?;
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidKey {
        algorithm: NAME,
        reason: "not a valid curve point".into(),
    })?;
    if key.is_weak() {
        return Err(CryptoError::InvalidKey {
            algorithm: NAME,
            reason: "small-order point".into(),
        });
    }
    Ok(key)
}

pub(crate) fn parse_signature(signature: &[u8]) -> Result<ed25519_dalek::Signature, CryptoError> {
    if signature.len() != 64 {
        return Err(CryptoError::SignatureLength {
            algorithm: NAME,
            expected: 64,
            actual: signature.len(),
        });
    }
    ed25519_dalek::Signature::from_slice(signature)
        .map_err(|_| CryptoError::InvalidSignature { algorithm: NAME })
}

pub(crate) fn verify(public_key: &[u8], msg: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    verify_with(&parse_public(public_key)?, msg, signature)
}

/// Verify with an already decompressed key (saves the point decompression on every call).
pub(crate) fn verify_with(
    key: &VerifyingKey,
    msg: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let sig = parse_signature(signature)?;
    key.verify_strict(msg, &sig).map_err(|_| CryptoError::InvalidSignature { algorithm: NAME })
}
