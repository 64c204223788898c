//! Multikey encoding (W3C Controlled Identifiers §2.2.2) with the multicodec codes of
//! `multiformats/multicodec`: `ed25519-pub` 0xed (base58btc, `z6Mk…`), `mldsa-44/65/87-pub`
//! 0x1210–0x1212 (base64url without padding, `u…`, as the W3C quantum-safe suites require).
use crate::{AlgorithmId, CryptoError, PublicKey};
use multibase::Base;

impl PublicKey {
    /// Multikey encoding: `z6Mk…` (base58btc) for Ed25519, `u…` (base64url) for ML-DSA.
    /// Composite keys have no multicodec; they are published as their two component Multikeys.
    pub fn to_multikey(&self) -> Result<String, CryptoError> {
        encode(self)
    }

    /// Parse a Multikey string.
    pub fn from_multikey(s: &str) -> Result<Self, CryptoError> {
        decode(s)
    }
}

/// Multicodec code of `ed25519-pub`.
pub const ED25519_PUB: u16 = 0xed;
/// Multicodec code of `mldsa-44-pub`.
pub const MLDSA44_PUB: u16 = 0x1210;
/// Multicodec code of `mldsa-65-pub`.
pub const MLDSA65_PUB: u16 = 0x1211;
/// Multicodec code of `mldsa-87-pub`.
pub const MLDSA87_PUB: u16 = 0x1212;

fn code_for(algorithm: AlgorithmId) -> Option<(u16, Base)> {
    match algorithm {
        AlgorithmId::Ed25519 => Some((ED25519_PUB, Base::Base58Btc)),
        AlgorithmId::MlDsa44 => Some((MLDSA44_PUB, Base::Base64Url)),
        AlgorithmId::MlDsa65 => Some((MLDSA65_PUB, Base::Base64Url)),
        AlgorithmId::MlDsa87 => Some((MLDSA87_PUB, Base::Base64Url)),
        _ => None,
    }
}

/// Unsigned LEB128 varint of a code below 2^14 (two bytes at most, enough for these codes).
fn varint(code: u16) -> Vec<u8> {
    if code < 0x80 { vec![code as u8] } else { vec![(code & 0x7f) as u8 | 0x80, (code >> 7) as u8] }
}

fn read_varint(bytes: &[u8]) -> Result<(u16, usize), CryptoError> {
    match bytes {
        [b0, ..] if b0 & 0x80 == 0 => Ok((u16::from(*b0), 1)),
        [b0, b1, ..] if b1 & 0x80 == 0 && *b1 != 0 => {
            Ok((u16::from(b0 & 0x7f) | (u16::from(*b1) << 7), 2))
        }
        _ => Err(CryptoError::Multikey("bad or unsupported multicodec varint".into())),
    }
}

/// Encode a public key as a Multikey string.
pub fn encode(key: &PublicKey) -> Result<String, CryptoError> {
    let (code, base) = code_for(key.algorithm()).ok_or_else(|| {
        CryptoError::Multikey(format!("{} has no multicodec code", key.algorithm()))
    })?;
    let mut data = varint(code);
    data.extend_from_slice(key.as_bytes());
    Ok(multibase::encode(base, data))
}

/// Decode a Multikey string. Ed25519 keys must be base58btc (`z`), ML-DSA keys base64url (`u`).
pub fn decode(s: &str) -> Result<PublicKey, CryptoError> {
    if s.len() > 8192 {
        return Err(CryptoError::Multikey("too long".into()));
    }
    let (base, data) = multibase::decode(s).map_err(|e| CryptoError::Multikey(e.to_string()))?;
    let (code, used) = read_varint(&data)?;
    let algorithm = match code {
        ED25519_PUB => AlgorithmId::Ed25519,
        MLDSA44_PUB => AlgorithmId::MlDsa44,
        MLDSA65_PUB => AlgorithmId::MlDsa65,
        MLDSA87_PUB => AlgorithmId::MlDsa87,
        other => {
            return Err(CryptoError::Multikey(format!("unsupported multicodec 0x{other:x}")));
        }
    };
    let expected_base = code_for(algorithm).map(|(_, b)| b);
    if Some(base) != expected_base {
        return Err(CryptoError::Multikey(format!(
            "{algorithm} Multikeys must use multibase {:?}, got {base:?}",
            expected_base
        )));
    }
    // Canonical form only: re-encoding must give back the same string.
    let key = PublicKey::from_bytes(algorithm, &data[used..])?;
    if encode(&key)? != s {
        return Err(CryptoError::Multikey("non-canonical encoding".into()));
    }
    Ok(key)
}
