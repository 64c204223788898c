//! Batch verification. Ed25519 items (and the Ed25519 halves of composites) are checked with
//! one batched multiscalar equation; ML-DSA items are checked one by one. When the batch
//! equation fails, items are rechecked singly so the error names exactly which ones failed.
//! Every item is verified under a [`CryptoProvider`] policy.
use crate::{AlgorithmId, CryptoError, CryptoProvider, PublicKey, composite, ed25519, mldsa};

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
    let mut failed = vec![false; items.len()];
    // (item index, Ed25519 key, message to check, signature bytes)
    let mut ed_items: Vec<(usize, ed25519_dalek::VerifyingKey, Vec<u8>, ed25519_dalek::Signature)> =
        Vec::new();
    for (i, item) in items.iter().enumerate() {
        let alg = item.key.algorithm();
        if !provider.accepts(alg) {
            failed[i] = true;
            continue;
        }
        let prepared = match alg {
            AlgorithmId::Ed25519 => {
                prepare_ed(item.key.as_bytes(), item.message, item.ctx, item.signature)
            }
            a if a.is_composite() => prepare_composite(a, item),
            _ => provider.verify(item.key, item.message, item.ctx, item.signature).map(|()| None),
        };
        match prepared {
            Ok(Some((vk, msg, sig))) => ed_items.push((i, vk, msg, sig)),
            Ok(None) => {}
            Err(_) => failed[i] = true,
        }
    }
    if !ed_items.is_empty() {
        let msgs: Vec<&[u8]> = ed_items.iter().map(|(_, _, m, _)| m.as_slice()).collect();
        let sigs: Vec<_> = ed_items.iter().map(|(_, _, _, s)| *s).collect();
        let keys: Vec<_> = ed_items.iter().map(|(_, k, _, _)| *k).collect();
        if ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_err() {
            for (i, vk, msg, sig) in &ed_items {
                if vk.verify_strict(msg, sig).is_err() {
                    failed[*i] = true;
                }
            }
        }
    }
    let failed: Vec<usize> =
        failed.iter().enumerate().filter(|(_, f)| **f).map(|(i, _)| i).collect();
    if failed.is_empty() { Ok(()) } else { Err(CryptoError::BatchFailed { failed }) }
}

type Prepared = Option<(ed25519_dalek::VerifyingKey, Vec<u8>, ed25519_dalek::Signature)>;

fn prepare_ed(pk: &[u8], msg: &[u8], ctx: &[u8], sig: &[u8]) -> Result<Prepared, CryptoError> {
    if !ctx.is_empty() {
        return Err(CryptoError::ContextUnsupported("Ed25519"));
    }
    Ok(Some((ed25519::parse_public(pk)?, msg.to_vec(), ed25519::parse_signature(sig)?)))
}

/// Check the ML-DSA half now; queue the Ed25519 half for the batch. Both must pass.
fn prepare_composite(alg: AlgorithmId, item: &BatchItem<'_>) -> Result<Prepared, CryptoError> {
    let component =
        alg.mldsa_component().ok_or(CryptoError::UnknownAlgorithm(alg.name().into()))?;
    let (mldsa_pk, ed_pk) = composite::split_public(alg, item.key.as_bytes())?;
    if item.signature.len() != alg.signature_len() {
        return Err(CryptoError::SignatureLength {
            algorithm: alg.name(),
            expected: alg.signature_len(),
            actual: item.signature.len(),
        });
    }
    let (mldsa_sig, ed_sig) = item.signature.split_at(item.signature.len() - 64);
    let m_prime = composite::composite_message_representative(alg, item.message, item.ctx)?;
    mldsa::verify(component, mldsa_pk, &m_prime, composite::label(alg)?, mldsa_sig)?;
    Ok(Some((ed25519::parse_public(ed_pk)?, m_prime, ed25519::parse_signature(ed_sig)?)))
}
