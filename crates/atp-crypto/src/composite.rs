//! Composite ML-DSA + Ed25519 signatures, as in draft-ietf-lamps-pq-composite-sigs:
//!
//! ```text
//! M' = Prefix || Label || len(ctx) || ctx || SHA-512(M)
//! s  = ML-DSA.Sign(sk_mldsa, M', ctx = Label) || Ed25519.Sign(sk_ed25519, M')
//! ```
//!
//! Verification checks **both** components and fails if either fails; there is no option to
//! accept one. That is what makes a downgrade impossible by construction.
use crate::{AlgorithmId, CryptoError, ed25519, mldsa};
use sha2::{Digest, Sha512};

/// The composite signature prefix, `CompositeAlgorithmSignatures2025`.
pub const COMPOSITE_PREFIX: &[u8] = b"CompositeAlgorithmSignatures2025";

pub(crate) fn label(alg: AlgorithmId) -> Result<&'static [u8], CryptoError> {
    match alg {
        AlgorithmId::MlDsa44Ed25519 => Ok(b"COMPSIG-MLDSA44-Ed25519-SHA512"),
        AlgorithmId::MlDsa65Ed25519 => Ok(b"COMPSIG-MLDSA65-Ed25519-SHA512"),
        other => Err(CryptoError::UnknownAlgorithm(other.name().into())),
    }
}

/// The message representative `M'` that both components sign.
pub fn composite_message_representative(
    alg: AlgorithmId,
    msg: &[u8],
    ctx: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let label = label(alg)?;
    let ctx_len = u8::try_from(ctx.len()).map_err(|_| CryptoError::ContextTooLong(ctx.len()))?;
    let digest = Sha512::digest(msg);
    let mut m = Vec::with_capacity(COMPOSITE_PREFIX.len() + label.len() + 1 + ctx.len() + 64);
    m.extend_from_slice(COMPOSITE_PREFIX);
    m.extend_from_slice(label);
    m.push(ctx_len);
    m.extend_from_slice(ctx);
    m.extend_from_slice(&digest);
    Ok(m)
}

pub(crate) fn sign(
    alg: AlgorithmId,
    mldsa_sk: &mldsa::MlDsaSecret,
    ed_sk: &ed25519_dalek::SigningKey,
    msg: &[u8],
    ctx: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let m_prime = composite_message_representative(alg, msg, ctx)?;
    let mut sig = mldsa::sign(mldsa_sk, &m_prime, label(alg)?)?;
    sig.extend_from_slice(&ed25519::sign(ed_sk, &m_prime));
    Ok(sig)
}

pub(crate) fn split_public(
    alg: AlgorithmId,
    public_key: &[u8],
) -> Result<(&[u8], &[u8]), CryptoError> {
    if public_key.len() != alg.public_key_len() {
        return Err(CryptoError::InvalidKey {
            algorithm: alg.name(),
            reason: format!(
                "public key must be {} bytes, got {}",
                alg.public_key_len(),
                public_key.len()
            ),
        });
    }
    Ok(public_key.split_at(public_key.len() - 32))
}

pub(crate) fn verify(
    alg: AlgorithmId,
    public_key: &[u8],
    msg: &[u8],
    ctx: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let (mldsa_pk, ed_pk) = split_public(alg, public_key)?;
    let ed_key = ed25519::parse_public(ed_pk).map_err(|e| CryptoError::InvalidKey {
        algorithm: alg.name(),
        reason: format!("Ed25519 component: {e}"),
    })?;
    verify_with(alg, mldsa_pk, &ed_key, msg, ctx, signature)
}

/// Verify with the Ed25519 component already decompressed.
pub(crate) fn verify_with(
    alg: AlgorithmId,
    mldsa_pk: &[u8],
    ed_key: &ed25519_dalek::VerifyingKey,
    msg: &[u8],
    ctx: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let component =
        alg.mldsa_component().ok_or(CryptoError::UnknownAlgorithm(alg.name().into()))?;

    if signature.len() != alg.signature_len() {
        return Err(CryptoError::SignatureLength {
            algorithm: alg.name(),
            expected: alg.signature_len(),
            actual: signature.len(),
        });
    }
    let (mldsa_sig, ed_sig) = signature.split_at(signature.len() - 64);
    let m_prime = composite_message_representative(alg, msg, ctx)?;
    // Both components are always checked, and both must pass.
    let mldsa_ok = mldsa::verify(component, mldsa_pk, &m_prime, label(alg)?, mldsa_sig);
    let ed_ok = ed25519::verify_with(ed_key, &m_prime, ed_sig);
    match (mldsa_ok, ed_ok) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(CryptoError::InvalidKey { reason, .. }), _) => Err(CryptoError::InvalidKey {
            algorithm: alg.name(),
            reason: format!("ML-DSA component: {reason}"),
        }),
        (_, Err(CryptoError::InvalidKey { reason, .. })) => Err(CryptoError::InvalidKey {
            algorithm: alg.name(),
            reason: format!("Ed25519 component: {reason}"),
        }),
        (Err(_), _) => Err(CryptoError::CompositeComponentInvalid {
            algorithm: alg.name(),
            component: "ML-DSA",
        }),
        (_, Err(_)) => Err(CryptoError::CompositeComponentInvalid {
            algorithm: alg.name(),
            component: "Ed25519",
        }),
    }
}
