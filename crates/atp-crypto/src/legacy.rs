//! CRYSTALS-Dilithium3 (round 3) through `pqcrypto-dilithium`, behind the non-default
//! `legacy-dilithium` feature. These are **not** FIPS 204 ML-DSA signatures: standard ML-DSA-65
//! verifiers reject them, and no built-in [`crate::CryptoProvider`] accepts them. The algorithm
//! exists only for peers that deployed the pre-standard scheme. It has no context input, so a
//! non-empty context is refused.
use crate::{AlgorithmId, CryptoError};
use pqcrypto_dilithium::dilithium3 as pq;
use pqcrypto_traits::sign::{DetachedSignature as _, PublicKey as _, SecretKey as _};
use zeroize::Zeroizing;

const NAME: &str = "legacy-dilithium3";

/// Boxed so the only copy can be overwritten on drop.
pub(crate) struct Secret(Box<pq::SecretKey>);

impl Drop for Secret {
    fn drop(&mut self) {
        let zero = vec![0u8; pq::secret_key_bytes()];
        if let Ok(z) = pq::SecretKey::from_bytes(&zero) {
            *self.0 = z;
            std::hint::black_box(&mut self.0);
        }
    }
}

/// A loaded key: the stored secret (sk || pk), the PQClean key and the public key bytes, which
/// `keys.rs` turns into a `SigningKey`.
pub(crate) struct Parts {
    pub(crate) secret: Zeroizing<Vec<u8>>,
    pub(crate) sk: Secret,
    pub(crate) public: Vec<u8>,
}

pub(crate) fn generate() -> Result<Parts, CryptoError> {
    let (pk, sk) = pq::keypair();
    let mut secret = Zeroizing::new(sk.as_bytes().to_vec());
    secret.extend_from_slice(pk.as_bytes());
    from_secret(&secret)
}

/// The legacy scheme has no seed-based key generation; its "secret" is sk || pk.
pub(crate) fn from_secret(secret: &[u8]) -> Result<Parts, CryptoError> {
    let sk_len = pq::secret_key_bytes();
    if secret.len() != sk_len + pq::public_key_bytes() {
        return Err(CryptoError::InvalidKey { algorithm: NAME, reason: "secret length".into() });
    }
    let sk = pq::SecretKey::from_bytes(&secret[..sk_len])
        .map_err(|_| CryptoError::InvalidKey { algorithm: NAME, reason: "secret key".into() })?;
    Ok(Parts {
        secret: Zeroizing::new(secret.to_vec()),
        sk: Secret(Box::new(sk)),
        public: secret[sk_len..].to_vec(),
    })
}

pub(crate) fn sign(sk: &Secret, msg: &[u8], ctx: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if !ctx.is_empty() {
        return Err(CryptoError::ContextUnsupported(NAME));
    }
    Ok(pq::detached_sign(msg, &sk.0).as_bytes().to_vec())
}

pub(crate) fn check_public(pk: &[u8]) -> Result<(), CryptoError> {
    if pk.len() != AlgorithmId::LegacyDilithium3.public_key_len() {
        return Err(CryptoError::InvalidKey {
            algorithm: NAME,
            reason: "public key length".into(),
        });
    }
    Ok(())
}

pub(crate) fn verify(pk: &[u8], msg: &[u8], ctx: &[u8], sig: &[u8]) -> Result<(), CryptoError> {
    if !ctx.is_empty() {
        return Err(CryptoError::ContextUnsupported(NAME));
    }
    check_public(pk)?;
    let pk = pq::PublicKey::from_bytes(pk)
        .map_err(|_| CryptoError::InvalidKey { algorithm: NAME, reason: "public key".into() })?;
    let sig = pq::DetachedSignature::from_bytes(sig)
        .map_err(|_| CryptoError::InvalidSignature { algorithm: NAME })?;
    pq::verify_detached_signature(&sig, msg, &pk)
        .map_err(|_| CryptoError::InvalidSignature { algorithm: NAME })
}
