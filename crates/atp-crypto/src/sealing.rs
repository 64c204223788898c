//! Personal data at rest, sealed under a per-subject data key (docs/audit.md, "Erasure").
//!
//! Erasure by crypto-shredding: the store keeps a subject's personal data only in sealed form
//! and the subject's [`DataKey`] in one small table. Destroying the key makes every copy of the
//! sealed bytes unreadable, wherever copies lie (free pages, the write-ahead log, replicas).
//!
//! The AEAD is ChaCha20-Poly1305 (RFC 8439) with a fresh random 96-bit nonce per seal. A
//! subject's key seals a few records at most, far below the 2^32 seals at which random nonces
//! would need care. The sealed layout is
//!
//! ```text
//! 0x01 (layout version) || nonce (12 bytes) || ciphertext || tag (16 bytes)
//! ```
//!
//! and the associated data names the record, so sealed bytes moved to another record (another
//! row, another subject) do not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use zeroize::Zeroizing;

use crate::CryptoError;

/// The length of a data key, in bytes.
pub const DATA_KEY_LEN: usize = 32;
/// The first byte of every sealed value: the layout version.
pub const SEALED_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The bytes sealing adds to a plaintext.
pub const SEALED_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// A subject's 256-bit data key. Zeroized on drop, never printed.
pub struct DataKey(Zeroizing<[u8; DATA_KEY_LEN]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        crate::random_bytes(&mut key[..])?;
        Ok(DataKey(key))
    }

    /// A stored key; exactly [`DATA_KEY_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let key: [u8; DATA_KEY_LEN] =
            bytes.try_into().map_err(|_| CryptoError::SealedData("a data key is 32 bytes"))?;
        Ok(DataKey(Zeroizing::new(key)))
    }

    /// A stored key read into `bytes`, which are zeroized whether or not they are a key.
    pub fn from_vec(mut bytes: Vec<u8>) -> Result<Self, CryptoError> {
        use zeroize::Zeroize as _;
        let key = Self::from_bytes(&bytes);
        bytes.zeroize();
        key
    }

    /// The key's bytes, to store in the subject-key table and nowhere else.
    pub fn as_bytes(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }

    /// Seals `plaintext`, bound to `record` (the associated data).
    pub fn seal(&self, record: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random_bytes(&mut nonce)?;
        let cipher = ChaCha20Poly1305::new((&*self.0).into());
        let ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: record })
            .map_err(|_| CryptoError::SealedData("encryption failed"))?;
        let mut sealed = Vec::with_capacity(SEALED_OVERHEAD + plaintext.len());
        sealed.push(SEALED_VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Opens what [`DataKey::seal`] sealed for `record`. Refuses an unknown layout version,
    /// short input, and any change to the key, record, nonce, ciphertext or tag.
    pub fn open(&self, record: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (version, rest) =
            sealed.split_first().ok_or(CryptoError::SealedData("empty sealed value"))?;
        if *version != SEALED_VERSION {
            return Err(CryptoError::SealedData("unknown sealed layout version"));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::SealedData("sealed value too short"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let cipher = ChaCha20Poly1305::new((&*self.0).into());
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: record })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::SealedData("authentication failed"))
    }
}
