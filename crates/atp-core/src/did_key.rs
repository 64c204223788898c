//! The `did:key` method (W3C CCG did:key v0.9) for W3C interoperability.
//!
//! `did:key:<multikey>` where the Multikey is an Ed25519 key (`z6Mk…`, base58btc) or an
//! ML-DSA-44/65/87 key (`u…`, base64url, as the W3C quantum-safe Data Integrity suites use).
//! Resolution is pure computation. The document has one `Multikey` verification method
//! `did:key:<mk>#<mk>`, referenced from `authentication`, `assertionMethod`,
//! `capabilityInvocation` and `capabilityDelegation`. ATP does not derive the optional X25519
//! `keyAgreement` key (the spec's `enableEncryptionKeyDerivation`, off by default).
//!
//! Parsing is strict: the prefix must be exactly `did:key:`, the multibase must be the one the
//! key type requires, the encoding canonical, the codec supported and the key the exact length.

use atp_crypto::PublicKey;
use atp_crypto::multikey::{ED25519_PUB, MLDSA44_PUB, MLDSA65_PUB, MLDSA87_PUB};

use crate::CoreError;
use crate::did::{
    DidDocument, DidDocumentMetadata, ResolutionResult, VerificationMethod, invalid_did,
    other_method,
};

/// The prefix of every `did:key` DID.
pub const DID_KEY_PREFIX: &str = "did:key:";

/// The longest `did:key` (or `did:key` DID URL) accepted: enough for ML-DSA-87 and a fragment.
pub const MAX_DID_KEY_LEN: usize = 8 + 2 * 3500;

/// Multicodec public-key codes that ATP supports (`atp_crypto::multikey`).
const SUPPORTED_PUBLIC_KEY_CODECS: [u32; 4] =
    [ED25519_PUB as u32, MLDSA44_PUB as u32, MLDSA65_PUB as u32, MLDSA87_PUB as u32];

/// Multicodec public-key codes of key types that `did:key` defines but ATP does not support
/// (secp256k1, BLS12-381, X25519, P-256/384/521, RSA, ML-KEM, SLH-DSA, …). A `did:key` with one
/// of these is well formed but unsupported; any other code makes it invalid.
const OTHER_PUBLIC_KEY_CODECS: [std::ops::RangeInclusive<u32>; 3] =
    [0xe7..=0xec, 0xee..=0xef, 0x1200..=0x122f];

/// The `did:key` of an Ed25519 or ML-DSA public key.
pub fn did_key_from_public_key(key: &PublicKey) -> Result<String, CoreError> {
    Ok(format!("{DID_KEY_PREFIX}{}", key.to_multikey()?))
}

/// Split a `did:key` DID or DID URL into the DID and its Multikey. A fragment, if present, must
/// repeat the Multikey (the only verification method a `did:key` document has).
fn split(did_or_url: &str) -> Result<(&str, &str), CoreError> {
    if did_or_url.len() > MAX_DID_KEY_LEN {
        return Err(invalid_did(did_or_url, "too long"));
    }
    let (did, fragment) = match did_or_url.split_once('#') {
        Some((d, f)) => (d, Some(f)),
        None => (did_or_url, None),
    };
    let mk = did.strip_prefix(DID_KEY_PREFIX).ok_or_else(|| other_method(did, "did:key"))?;
    if let Some(f) = fragment
        && f != mk
    {
        return Err(invalid_did(did_or_url, "the fragment must equal the key"));
    }
    Ok((did, mk))
}

/// The public key of a `did:key` DID, or of its verification method
/// (`did:key:<mk>#<mk>`). Ed25519 and ML-DSA-44/65/87 keys are supported.
pub fn parse_did_key(did_or_url: &str) -> Result<PublicKey, CoreError> {
    let (did, mk) = split(did_or_url)?;
    // The Multikey decoder of `atp-crypto` is the single, strict parser (canonical multibase,
    // supported codec, exact key length). Only when it refuses do we look at the codec, so
    // that a key type `did:key` defines but ATP does not support gets its own error.
    PublicKey::from_multikey(mk).map_err(|e| match multicodec(mk) {
        Some(code)
            if !SUPPORTED_PUBLIC_KEY_CODECS.contains(&code)
                && OTHER_PUBLIC_KEY_CODECS.iter().any(|r| r.contains(&code)) =>
        {
            CoreError::DidKeyUnsupportedKeyType(format!("multicodec 0x{code:x}"))
        }
        _ => invalid_did(did, e),
    })
}

/// The multicodec code at the start of a Multikey, if it decodes (a varint of at most two
/// bytes, as in `atp_crypto::multikey`: every public-key code is below 2^14).
fn multicodec(mk: &str) -> Option<u32> {
    let (_, data) = multibase::decode(mk).ok()?;
    match data.as_slice() {
        [b0, ..] if b0 & 0x80 == 0 => Some(u32::from(*b0)),
        [b0, b1, ..] if b1 & 0x80 == 0 && *b1 != 0 => {
            Some(u32::from(b0 & 0x7f) | (u32::from(*b1) << 7))
        }
        _ => None,
    }
}

/// Resolve a `did:key` DID (not a DID URL) to its DID document.
pub fn resolve_did_key(did: &str) -> Result<DidDocument, CoreError> {
    if did.contains('#') {
        return Err(invalid_did(did, "a DID, not a DID URL, is resolved"));
    }
    let key = parse_did_key(did)?;
    let mk = key.to_multikey()?;
    let vm_id = format!("{did}#{mk}");
    let mut doc = DidDocument::minimal(did);
    doc.verification_method = vec![VerificationMethod {
        id: vm_id.clone(),
        method_type: "Multikey".to_owned(),
        controller: did.to_owned(),
        public_key_multibase: mk,
    }];
    doc.authentication = vec![vm_id.clone()];
    doc.assertion_method = vec![vm_id.clone()];
    doc.capability_invocation = vec![vm_id.clone()];
    doc.capability_delegation = vec![vm_id];
    Ok(doc)
}

/// Resolve a `did:key` DID to a resolution result (no versions; never deactivated).
pub fn resolve_did_key_result(did: &str) -> Result<ResolutionResult, CoreError> {
    Ok(ResolutionResult::new(resolve_did_key(did)?, DidDocumentMetadata::default()))
}
