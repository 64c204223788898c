// The Multikey methods of `PublicKey` live in `multikey.rs`, and the legacy Dilithium key in
// `legacy.rs` is assembled here from its parts, so that neither module imports this one back.
use crate::{AlgorithmId, CryptoError, composite, ed25519, mldsa};
use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

enum Inner {
    Ed25519(Box<ed25519_dalek::SigningKey>),
    MlDsa(mldsa::MlDsaSecret),
    Composite {
        mldsa: Box<SigningKey>,
        ed25519: Box<SigningKey>,
    },
    #[cfg(feature = "legacy-dilithium")]
    Legacy(crate::legacy::Secret),
}

/// A private signing key of any supported algorithm.
///
/// The key material is zeroized on drop, `Debug` prints only the algorithm and public key, and
/// equality is constant-time. It is deliberately neither `Clone` nor serialisable: the only way
/// out of the process is [`crate::keyfile`].
pub struct SigningKey {
    algorithm: AlgorithmId,
    /// The private seed (ML-DSA seed, Ed25519 seed, or both concatenated for a composite).
    secret: Zeroizing<Vec<u8>>,
    inner: Inner,
    public: PublicKey,
}

impl SigningKey {
    /// Generate a new key from the operating system's CSPRNG.
    pub fn generate(algorithm: AlgorithmId) -> Result<Self, CryptoError> {
        #[cfg(feature = "legacy-dilithium")]
        if algorithm == AlgorithmId::LegacyDilithium3 {
            return crate::legacy::generate().map(Self::from_legacy_parts);
        }
        let mut seed = Zeroizing::new(vec![0u8; algorithm.seed_len()]);
        crate::random_bytes(&mut seed)?;
        Self::from_seed(algorithm, &seed)
    }

    /// Derive a key from its private seed: 32 bytes for Ed25519 and ML-DSA (the FIPS 204 `ξ`),
    /// 64 bytes for a composite (the ML-DSA seed followed by the Ed25519 seed, as in the
    /// composite draft's private key format).
    pub fn from_seed(algorithm: AlgorithmId, seed: &[u8]) -> Result<Self, CryptoError> {
        if seed.len() != algorithm.seed_len() {
            return Err(CryptoError::InvalidKey {
                algorithm: algorithm.name(),
                reason: format!("seed must be {} bytes, got {}", algorithm.seed_len(), seed.len()),
            });
        }
        let secret = Zeroizing::new(seed.to_vec());
        let (inner, public_bytes) = match algorithm {
            AlgorithmId::Ed25519 => {
                let sk = ed25519::signing_key_from_seed(seed)?;
                let pk = sk.verifying_key().to_bytes().to_vec();
                (Inner::Ed25519(Box::new(sk)), pk)
            }
            AlgorithmId::MlDsa44 | AlgorithmId::MlDsa65 | AlgorithmId::MlDsa87 => {
                let mut s = Zeroizing::new([0u8; 32]);
                s.copy_from_slice(seed);
                let (sk, pk) = mldsa::from_seed(algorithm, &s)?;
                (Inner::MlDsa(sk), pk)
            }
            AlgorithmId::MlDsa44Ed25519 | AlgorithmId::MlDsa65Ed25519 => {
                let component = algorithm
                    .mldsa_component()
                    .ok_or(CryptoError::UnknownAlgorithm(algorithm.name().into()))?;
                let mldsa = Box::new(SigningKey::from_seed(component, &seed[..32])?);
                let ed25519 = Box::new(SigningKey::from_seed(AlgorithmId::Ed25519, &seed[32..])?);
                let mut pk = mldsa.public.bytes.clone();
                pk.extend_from_slice(&ed25519.public.bytes);
                (Inner::Composite { mldsa, ed25519 }, pk)
            }
            #[cfg(feature = "legacy-dilithium")]
            AlgorithmId::LegacyDilithium3 => {
                return crate::legacy::from_secret(seed).map(Self::from_legacy_parts);
            }
        };
        Ok(SigningKey {
            algorithm,
            secret,
            inner,
            public: PublicKey::from_bytes(algorithm, &public_bytes)?,
        })
    }

    #[cfg(feature = "legacy-dilithium")]
    fn from_legacy_parts(parts: crate::legacy::Parts) -> Self {
        let crate::legacy::Parts { secret, sk, public } = parts;
        SigningKey {
            algorithm: AlgorithmId::LegacyDilithium3,
            secret,
            inner: Inner::Legacy(sk),
            public: PublicKey {
                algorithm: AlgorithmId::LegacyDilithium3,
                bytes: public,
                ed25519: None,
            },
        }
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> AlgorithmId {
        self.algorithm
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// The matching public key, borrowed.
    pub fn public_key_ref(&self) -> &PublicKey {
        &self.public
    }

    /// For a composite key, its (ML-DSA, Ed25519) components.
    pub fn components(&self) -> Option<(&SigningKey, &SigningKey)> {
        match &self.inner {
            Inner::Composite { mldsa, ed25519 } => Some((mldsa, ed25519)),
            _ => None,
        }
    }

    /// The private seed, for the key file only.
    pub(crate) fn secret_bytes(&self) -> &[u8] {
        &self.secret
    }

    /// Sign `msg` with the context string `ctx` (at most 255 bytes).
    ///
    /// Pure Ed25519 has no context input: a non-empty `ctx` is refused rather than ignored.
    pub fn sign(&self, msg: &[u8], ctx: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if ctx.len() > 255 {
            return Err(CryptoError::ContextTooLong(ctx.len()));
        }
        match &self.inner {
            Inner::Ed25519(sk) => {
                if !ctx.is_empty() {
                    return Err(CryptoError::ContextUnsupported("Ed25519"));
                }
                Ok(ed25519::sign(sk, msg).to_vec())
            }
            Inner::MlDsa(sk) => mldsa::sign(sk, msg, ctx),
            Inner::Composite { mldsa, ed25519 } => {
                let (Inner::MlDsa(m), Inner::Ed25519(e)) = (&mldsa.inner, &ed25519.inner) else {
                    return Err(CryptoError::UnknownAlgorithm(self.algorithm.name().into()));
                };
                composite::sign(self.algorithm, m, e, msg, ctx)
            }
            #[cfg(feature = "legacy-dilithium")]
            Inner::Legacy(sk) => crate::legacy::sign(sk, msg, ctx),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("public_key", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && bool::from(self.secret.ct_eq(&other.secret))
    }
}
impl Eq for SigningKey {}

/// A public key of any supported algorithm, validated on construction.
///
/// Equality, ordering and hashing use the algorithm and the raw bytes only.
#[derive(Clone)]
pub struct PublicKey {
    algorithm: AlgorithmId,
    bytes: Vec<u8>,
    /// The Ed25519 key (or composite's Ed25519 component), decompressed once at parse time.
    ed25519: Option<ed25519_dalek::VerifyingKey>,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.bytes == other.bytes
    }
}
impl Eq for PublicKey {}
impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.algorithm.hash(state);
        self.bytes.hash(state);
    }
}
impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.algorithm, &self.bytes).cmp(&(other.algorithm, &other.bytes))
    }
}

impl PublicKey {
    /// Parse raw public key bytes. Composite keys are the ML-DSA key followed by the Ed25519 key.
    pub fn from_bytes(algorithm: AlgorithmId, bytes: &[u8]) -> Result<Self, CryptoError> {
        let ed25519 = match algorithm {
            AlgorithmId::Ed25519 => Some(ed25519::parse_public(bytes)?),
            AlgorithmId::MlDsa44 | AlgorithmId::MlDsa65 | AlgorithmId::MlDsa87 => {
                mldsa::check_public(algorithm, bytes)?;
                None
            }
            AlgorithmId::MlDsa44Ed25519 | AlgorithmId::MlDsa65Ed25519 => {
                let (_, ed) = composite::split_public(algorithm, bytes)?;
                Some(ed25519::parse_public(ed).map_err(|e| CryptoError::InvalidKey {
                    algorithm: algorithm.name(),
                    reason: format!("Ed25519 component: {e}"),
                })?)
            }
            #[cfg(feature = "legacy-dilithium")]
            AlgorithmId::LegacyDilithium3 => {
                crate::legacy::check_public(bytes)?;
                None
            }
        };
        Ok(PublicKey { algorithm, bytes: bytes.to_vec(), ed25519 })
    }

    /// Combine an ML-DSA and an Ed25519 public key into the matching composite key.
    pub fn composite(mldsa: &PublicKey, ed25519: &PublicKey) -> Result<Self, CryptoError> {
        let algorithm = match (mldsa.algorithm, ed25519.algorithm) {
            (AlgorithmId::MlDsa65, AlgorithmId::Ed25519) => AlgorithmId::MlDsa65Ed25519,
            (AlgorithmId::MlDsa44, AlgorithmId::Ed25519) => AlgorithmId::MlDsa44Ed25519,
            (a, b) => {
                return Err(CryptoError::UnknownAlgorithm(format!("{a}+{b}")));
            }
        };
        let mut bytes = mldsa.bytes.clone();
        bytes.extend_from_slice(&ed25519.bytes);
        Ok(PublicKey { algorithm, bytes, ed25519: ed25519.ed25519 })
    }

    /// The algorithm of this key.
    pub fn algorithm(&self) -> AlgorithmId {
        self.algorithm
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// For a composite key, its (ML-DSA, Ed25519) component keys.
    pub fn components(&self) -> Option<(PublicKey, PublicKey)> {
        let component = self.algorithm.mldsa_component()?;
        let (m, e) = self.bytes.split_at(self.bytes.len() - 32);
        Some((
            PublicKey { algorithm: component, bytes: m.to_vec(), ed25519: None },
            PublicKey { algorithm: AlgorithmId::Ed25519, bytes: e.to_vec(), ed25519: self.ed25519 },
        ))
    }

    /// Verify `signature` over `msg` with context `ctx`. For a composite key both components
    /// must verify.
    pub fn verify(&self, msg: &[u8], ctx: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        match (self.algorithm, &self.ed25519) {
            (AlgorithmId::Ed25519, Some(vk)) if ctx.is_empty() => {
                ed25519::verify_with(vk, msg, signature)
            }
            (alg, Some(vk)) if alg.is_composite() => {
                if ctx.len() > 255 {
                    return Err(CryptoError::ContextTooLong(ctx.len()));
                }
                let (m, _) = composite::split_public(alg, &self.bytes)?;
                composite::verify_with(alg, m, vk, msg, ctx, signature)
            }
            _ => verify_raw(self.algorithm, &self.bytes, msg, ctx, signature),
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head: String = hex::encode(&self.bytes[..self.bytes.len().min(8)]);
        write!(f, "PublicKey({}, {}…, {} bytes)", self.algorithm, head, self.bytes.len())
    }
}

/// Verify with raw public key bytes; the single dispatch point used by keys and the provider.
pub(crate) fn verify_raw(
    algorithm: AlgorithmId,
    public_key: &[u8],
    msg: &[u8],
    ctx: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    if ctx.len() > 255 {
        return Err(CryptoError::ContextTooLong(ctx.len()));
    }
    match algorithm {
        AlgorithmId::Ed25519 => {
            if !ctx.is_empty() {
                return Err(CryptoError::ContextUnsupported("Ed25519"));
            }
            ed25519::verify(public_key, msg, signature)
        }
        AlgorithmId::MlDsa44 | AlgorithmId::MlDsa65 | AlgorithmId::MlDsa87 => {
            mldsa::verify(algorithm, public_key, msg, ctx, signature)
        }
        AlgorithmId::MlDsa44Ed25519 | AlgorithmId::MlDsa65Ed25519 => {
            composite::verify(algorithm, public_key, msg, ctx, signature)
        }
        #[cfg(feature = "legacy-dilithium")]
        AlgorithmId::LegacyDilithium3 => crate::legacy::verify(public_key, msg, ctx, signature),
    }
}
