//! Signed status-list updates: how an external issuer changes the entries of a status list that
//! a node hosts on its behalf (docs/protocol.md §D4, `SignedStatusListUpdate` in
//! proto/atp/v1/credential.proto).
//!
//! The signed bytes are a fixed binary layout, not JSON, so that what is verified is exactly
//! what is applied: the node reads every value from the signed bytes. A node checks, in this
//! order, that the bytes parse exactly ([`StatusListUpdate::parse`]), that it hosts the list,
//! that the issuer controls it, that `issuer_key_seq` names the issuer's current key, that the
//! purpose matches, that the signature verifies ([`verify_signature`]), that `update_seq` grows
//! and that no change clears a set revocation entry. Those list-dependent checks belong to the
//! node; this module holds the format and the signature.

use atp_crypto::{PublicKey, SigningContext, SigningKey};

use crate::CoreError;
use crate::did::parse_did_atp;
use crate::status_list::StatusPurpose;
use crate::wire::Reader;

/// The first 8 bytes of every update: `ATPSTL1` and a zero byte.
pub const MAGIC: [u8; 8] = *b"ATPSTL1\0";
/// The longest issuer DID, in bytes.
pub const MAX_ISSUER_BYTES: usize = 512;
/// The longest status list URL, in bytes.
pub const MAX_LIST_URL_BYTES: usize = 2048;
/// The most changes one update may carry.
pub const MAX_CHANGES: usize = 4096;
/// The largest possible update, in bytes (every variable part at its limit).
pub const MAX_UPDATE_BYTES: usize =
    8 + 4 + MAX_ISSUER_BYTES + 8 + 4 + MAX_LIST_URL_BYTES + 1 + 8 + 8 + 4 + 9 * MAX_CHANGES;

/// One entry change: set entry `index` to `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusChange {
    /// The entry's index in the list.
    pub index: u64,
    /// The new value; below `2^statusSize` of the list (checked by the node, which knows it).
    pub value: u8,
}

/// The content of a signed status-list update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusListUpdate {
    /// The issuer's `did:atp`.
    pub issuer: String,
    /// The `s` of the KEL event that established the signing key.
    pub issuer_key_seq: u64,
    /// The list's URL, exactly as in the credentials' `statusListCredential`.
    pub status_list_credential: String,
    /// The list's purpose.
    pub status_purpose: StatusPurpose,
    /// Strictly greater than the last update the node accepted for the list; at least 1.
    pub update_seq: u64,
    /// When the issuer made the update, Unix milliseconds (>= 0).
    pub issued_at_ms: i64,
    /// The changes, indices strictly increasing; 1 to [`MAX_CHANGES`].
    pub changes: Vec<StatusChange>,
}

fn malformed(reason: impl Into<String>) -> CoreError {
    CoreError::StatusUpdateMalformed(reason.into())
}

fn purpose_byte(p: StatusPurpose) -> u8 {
    match p {
        StatusPurpose::Revocation => 1,
        StatusPurpose::Suspension => 2,
        StatusPurpose::Message => 3,
    }
}

fn purpose_from_byte(b: u8) -> Result<StatusPurpose, CoreError> {
    match b {
        1 => Ok(StatusPurpose::Revocation),
        2 => Ok(StatusPurpose::Suspension),
        3 => Ok(StatusPurpose::Message),
        other => Err(malformed(format!("status_purpose {other} is not 1, 2 or 3"))),
    }
}

impl StatusListUpdate {
    /// Checks every rule the layout states that does not depend on the list.
    fn validate(&self) -> Result<(), CoreError> {
        if self.issuer.is_empty() || self.issuer.len() > MAX_ISSUER_BYTES {
            return Err(malformed(format!("issuer must be 1 to {MAX_ISSUER_BYTES} bytes")));
        }
        parse_did_atp(&self.issuer)
            .map_err(|e| malformed(format!("issuer is not a did:atp: {e}")))?;
        let url = &self.status_list_credential;
        if url.is_empty() || url.len() > MAX_LIST_URL_BYTES {
            return Err(malformed(format!(
                "status_list_credential must be 1 to {MAX_LIST_URL_BYTES} bytes"
            )));
        }
        if url.chars().any(char::is_control) {
            return Err(malformed("status_list_credential holds control characters"));
        }
        if self.update_seq == 0 {
            return Err(malformed("update_seq must be at least 1"));
        }
        if self.issued_at_ms < 0 {
            return Err(malformed("issued_at must not be negative"));
        }
        if self.changes.is_empty() || self.changes.len() > MAX_CHANGES {
            return Err(malformed(format!("an update holds 1 to {MAX_CHANGES} changes")));
        }
        if self.changes.windows(2).any(|w| w[0].index >= w[1].index) {
            return Err(malformed("change indices must be strictly increasing"));
        }
        Ok(())
    }

    /// The signed bytes (the layout of the module documentation).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CoreError> {
        self.validate()?;
        let len32 = |n: usize| {
            u32::try_from(n).map(u32::to_be_bytes).map_err(|_| malformed("length overflow"))
        };
        let mut out = Vec::with_capacity(
            2605 + self.issuer.len() + self.status_list_credential.len() + 9 * self.changes.len(),
        );
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&len32(self.issuer.len())?);
        out.extend_from_slice(self.issuer.as_bytes());
        out.extend_from_slice(&self.issuer_key_seq.to_be_bytes());
        out.extend_from_slice(&len32(self.status_list_credential.len())?);
        out.extend_from_slice(self.status_list_credential.as_bytes());
        out.push(purpose_byte(self.status_purpose));
        out.extend_from_slice(&self.update_seq.to_be_bytes());
        out.extend_from_slice(&self.issued_at_ms.to_be_bytes());
        out.extend_from_slice(&len32(self.changes.len())?);
        for c in &self.changes {
            out.extend_from_slice(&c.index.to_be_bytes());
            out.push(c.value);
        }
        Ok(out)
    }

    /// Parses signed bytes, exactly: any deviation from the layout, a limit broken, or a byte
    /// left over is `STATUS_UPDATE_MALFORMED`.
    pub fn parse(bytes: &[u8]) -> Result<Self, CoreError> {
        if bytes.len() > MAX_UPDATE_BYTES {
            return Err(malformed(format!("{} bytes, above {MAX_UPDATE_BYTES}", bytes.len())));
        }
        let mut r = Reader::new(bytes, truncated);
        if r.take(8, "magic")? != MAGIC {
            return Err(malformed("wrong magic (expected ATPSTL1 and a zero byte)"));
        }
        let issuer = string(&mut r, MAX_ISSUER_BYTES, "issuer")?;
        let issuer_key_seq = r.u64("issuer_key_seq")?;
        let status_list_credential = string(&mut r, MAX_LIST_URL_BYTES, "status_list_credential")?;
        let status_purpose = purpose_from_byte(r.u8("status_purpose")?)?;
        let update_seq = r.u64("update_seq")?;
        let issued_at_ms = r.i64("issued_at")?;
        let n = r.len("change count")?;
        if n == 0 || n > MAX_CHANGES {
            return Err(malformed(format!("an update holds 1 to {MAX_CHANGES} changes, not {n}")));
        }
        let mut changes = Vec::with_capacity(n);
        for _ in 0..n {
            let index = r.u64("change index")?;
            let value = r.u8("change value")?;
            changes.push(StatusChange { index, value });
        }
        if !r.rest().is_empty() {
            return Err(malformed(format!("{} bytes after the last change", r.rest().len())));
        }
        let update = StatusListUpdate {
            issuer,
            issuer_key_seq,
            status_list_credential,
            status_purpose,
            update_seq,
            issued_at_ms,
            changes,
        };
        update.validate()?;
        Ok(update)
    }

    /// Signs the update with the issuer's current key; returns `(update bytes, signature)`.
    pub fn sign(&self, key: &SigningKey) -> Result<(Vec<u8>, Vec<u8>), CoreError> {
        let bytes = self.to_bytes()?;
        let signature = key.sign(&bytes, SigningContext::StatusList.as_bytes())?;
        Ok((bytes, signature))
    }
}

/// Verifies `signature` over the signed bytes `update` under `key` with ctx
/// `atp/status-list/v1`; a failure is `STATUS_UPDATE_BAD_SIGNATURE`.
pub fn verify_signature(update: &[u8], signature: &[u8], key: &PublicKey) -> Result<(), CoreError> {
    key.verify(update, SigningContext::StatusList.as_bytes(), signature)
        .map_err(|e| CoreError::StatusUpdateBadSignature(e.to_string()))
}

/// A read past the end of the signed bytes.
fn truncated(what: &str) -> CoreError {
    malformed(format!("truncated at {what}"))
}

/// A length-prefixed UTF-8 string of 1 to `max` bytes.
fn string(r: &mut Reader<'_>, max: usize, what: &str) -> Result<String, CoreError> {
    let len = r.len(what)?;
    if len == 0 || len > max {
        return Err(malformed(format!("{what} must be 1 to {max} bytes, not {len}")));
    }
    let bytes = r.take(len, what)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed(format!("{what} is not UTF-8")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use atp_crypto::AlgorithmId;

    fn sample(issuer: &str) -> StatusListUpdate {
        StatusListUpdate {
            issuer: issuer.to_owned(),
            issuer_key_seq: 0,
            status_list_credential: "http://127.0.0.1:7443/status/revocation-ab".into(),
            status_purpose: StatusPurpose::Revocation,
            update_seq: 7,
            issued_at_ms: 1_700_000_000_000,
            changes: vec![StatusChange { index: 3, value: 1 }, StatusChange { index: 9, value: 1 }],
        }
    }

    fn issuer_did() -> (SigningKey, String) {
        let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
        let next = SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap();
        let event =
            crate::kel::incept(&key, &next.public_key(), Vec::new(), "2026-01-01T00:00:00Z")
                .unwrap();
        let did = crate::kel::verify_log(&[event]).unwrap().did;
        (key, did)
    }

    #[test]
    fn round_trip_sign_and_verify() {
        let (key, did) = issuer_did();
        let update = sample(&did);
        let (bytes, sig) = update.sign(&key).unwrap();
        assert_eq!(StatusListUpdate::parse(&bytes).unwrap(), update);
        verify_signature(&bytes, &sig, &key.public_key()).unwrap();
        // The layout's fixed part: magic, then the big-endian issuer length.
        assert_eq!(&bytes[..8], b"ATPSTL1\0");
        assert_eq!(u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize, did.len());
    }

    #[test]
    fn any_flipped_byte_fails_parse_or_signature() {
        let (key, did) = issuer_did();
        let (bytes, sig) = sample(&did).sign(&key).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let parsed = StatusListUpdate::parse(&b);
            let verified = verify_signature(&b, &sig, &key.public_key());
            assert!(parsed.is_err() || verified.is_err(), "byte {i} flipped still accepted");
        }
        let e = verify_signature(&bytes, &sig[1..], &key.public_key()).unwrap_err();
        assert_eq!(e.code(), "STATUS_UPDATE_BAD_SIGNATURE");
    }

    #[test]
    fn wrong_context_signature_is_refused() {
        let (key, did) = issuer_did();
        let bytes = sample(&did).to_bytes().unwrap();
        let sig = key.sign(&bytes, SigningContext::Envelope.as_bytes()).unwrap();
        assert!(verify_signature(&bytes, &sig, &key.public_key()).is_err());
    }

    #[test]
    fn malformed_inputs_have_the_malformed_code() {
        let (_, did) = issuer_did();
        let good = sample(&did).to_bytes().unwrap();
        let mut trailing = good.clone();
        trailing.push(0);
        let mut bad_magic = good.clone();
        bad_magic[6] = b'2';
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            good[..good.len() - 1].to_vec(),
            trailing,
            bad_magic,
            vec![0u8; MAX_UPDATE_BYTES + 1],
        ];
        for (i, c) in cases.iter().enumerate() {
            let e = StatusListUpdate::parse(c).unwrap_err();
            assert_eq!(e.code(), "STATUS_UPDATE_MALFORMED", "case {i}: {e}");
        }
        let mut u = sample(&did);
        u.changes.reverse();
        assert_eq!(u.to_bytes().unwrap_err().code(), "STATUS_UPDATE_MALFORMED");
        let mut u = sample(&did);
        u.update_seq = 0;
        assert_eq!(u.to_bytes().unwrap_err().code(), "STATUS_UPDATE_MALFORMED");
        let mut u = sample(&did);
        u.issuer = "did:web:example.com".into();
        assert_eq!(u.to_bytes().unwrap_err().code(), "STATUS_UPDATE_MALFORMED");
        let mut u = sample(&did);
        u.changes = vec![StatusChange { index: 1, value: 1 }; 0];
        assert_eq!(u.to_bytes().unwrap_err().code(), "STATUS_UPDATE_MALFORMED");
    }

    #[test]
    fn max_update_bytes_matches_the_documented_bound() {
        assert_eq!(MAX_UPDATE_BYTES, 39_469);
    }
}
