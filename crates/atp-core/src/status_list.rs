//! W3C Bitstring Status List v1.0: revocation, suspension and status messages for credentials.
//!
//! # Format choices
//!
//! - **Bit order.** Entry `i` of a list with `statusSize = s` occupies bits `[i*s, (i+1)*s)` of
//!   the bitstring, and bit 0 is the left-most (most significant) bit of the first byte. Within
//!   an entry the first bit is the most significant bit of the value. This is the order of the
//!   spec and of its implementations; an implementation that reads bits LSB-first would see
//!   different credentials as revoked.
//! - **Size.** The spec requires the bitstring to hold at least 131,072 entries (16 KB for one
//!   bit per entry), so that fetching a list tells an observer little about which credential is
//!   being checked. [`BitstringStatusList::new`] and [`BitstringStatusList::decode`] both refuse
//!   shorter lists (`STATUS_LIST_LENGTH_ERROR`) rather than pad them. `statusSize` is limited to
//!   `1..=8` bits, so that a status value fits a `u8`; the status messages of a list with
//!   `statusSize = 8` already number 256.
//! - **Encoding.** `encodedList` is the GZIP (RFC 1952) compression of the bitstring, encoded as
//!   multibase base64url without padding, i.e. the letter `u` followed by the base64url text.
//!   Decoding accepts only that multibase prefix, only unpadded canonical base64url, exactly one
//!   GZIP member with a correct CRC and nothing after it.
//! - **Limits.** A list comes from the network and a few kilobytes of GZIP can expand to
//!   gigabytes, so decompression reads through [`std::io::Read::take`] and stops at
//!   [`MAX_DECODED_BYTES`] (16 MiB, i.e. 134 million one-bit entries) plus one byte; anything
//!   bigger is refused without being held in memory. The encoded text is capped as well.
//! - **Credentials.** [`status_list_credential`] builds the unsigned
//!   `BitstringStatusListCredential` (VC Data Model 2.0); securing it is the job of the Data
//!   Integrity module. [`parse_status_list_credential`] and [`resolve_status`] implement the
//!   structural steps of the spec's validation algorithm. They do **not** verify the credential's
//!   proofs or validity period: the caller must do that first.

use std::fmt;
use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flate2::Compression;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::CoreError;

/// The minimum number of entries in a status list (the spec's `minimumNumberOfEntries`).
pub const MIN_ENTRIES: u64 = 131_072;

/// The largest supported `statusSize`, in bits.
pub const MAX_STATUS_SIZE: u8 = 8;

/// The largest uncompressed bitstring accepted or produced: 16 MiB.
pub const MAX_DECODED_BYTES: usize = 16 * 1024 * 1024;

/// The largest `encodedList` accepted, in characters: enough for an incompressible
/// [`MAX_DECODED_BYTES`] bitstring plus GZIP framing, encoded in base64.
pub const MAX_ENCODED_CHARS: usize = 1 + (MAX_DECODED_BYTES + 64 * 1024) / 3 * 4;

/// The multibase prefix of base64url without padding.
const MULTIBASE_BASE64URL: char = 'u';

/// The `@context` of a VC Data Model 2.0 credential; it defines the status list terms too.
pub use crate::vc::VC_V2_CONTEXT;

/// The `type` of a status list entry inside a credential's `credentialStatus`.
pub const ENTRY_TYPE: &str = "BitstringStatusListEntry";

/// The `type` of a status list credential (besides `VerifiableCredential`).
pub const CREDENTIAL_TYPE: &str = "BitstringStatusListCredential";

/// The `type` of a status list credential's subject.
pub const SUBJECT_TYPE: &str = "BitstringStatusList";

/// What a status list is for (`statusPurpose`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusPurpose {
    /// A set entry means the credential is revoked, permanently.
    Revocation,
    /// A set entry means the credential is suspended; it can be reinstated.
    Suspension,
    /// An entry's value selects one of the entry's `statusMessage`s.
    Message,
}

impl StatusPurpose {
    /// The JSON spelling: `revocation`, `suspension` or `message`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StatusPurpose::Revocation => "revocation",
            StatusPurpose::Suspension => "suspension",
            StatusPurpose::Message => "message",
        }
    }

    /// Parses the JSON spelling; anything else is an error.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        match s {
            "revocation" => Ok(StatusPurpose::Revocation),
            "suspension" => Ok(StatusPurpose::Suspension),
            "message" => Ok(StatusPurpose::Message),
            _ => Err(CoreError::StatusListPurpose(s.chars().take(64).collect())),
        }
    }
}

impl fmt::Display for StatusPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn check_status_size(status_size: u8) -> Result<(), CoreError> {
    if status_size == 0 || status_size > MAX_STATUS_SIZE {
        return Err(CoreError::StatusListStatusSize { status_size });
    }
    Ok(())
}

/// A bitstring status list: `entries` status values of `status_size` bits each.
#[derive(Clone, PartialEq, Eq)]
pub struct BitstringStatusList {
    status_size: u8,
    entries: u64,
    bits: Vec<u8>,
}

impl fmt::Debug for BitstringStatusList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BitstringStatusList")
            .field("status_size", &self.status_size)
            .field("entries", &self.entries)
            .field("bytes", &self.bits.len())
            .finish_non_exhaustive()
    }
}

impl BitstringStatusList {
    /// A list of `entries` zero values of `status_size` bits.
    ///
    /// Errors: `status_size` outside `1..=8`; fewer than [`MIN_ENTRIES`] entries; a bitstring
    /// larger than [`MAX_DECODED_BYTES`].
    pub fn new(entries: u64, status_size: u8) -> Result<Self, CoreError> {
        check_status_size(status_size)?;
        if entries < MIN_ENTRIES {
            return Err(CoreError::StatusListLength { entries, min: MIN_ENTRIES });
        }
        let bytes = entries
            .checked_mul(u64::from(status_size))
            .map(|bits| bits.div_ceil(8))
            .and_then(|b| usize::try_from(b).ok())
            .filter(|b| *b <= MAX_DECODED_BYTES)
            .ok_or(CoreError::StatusListTooLarge { max_bytes: MAX_DECODED_BYTES })?;
        Ok(Self { status_size, entries, bits: vec![0; bytes] })
    }

    /// Wraps an uncompressed bitstring. The number of entries is
    /// `floor(8 * bytes.len() / status_size)`; left-over bits at the end are padding.
    pub fn from_bytes(bytes: Vec<u8>, status_size: u8) -> Result<Self, CoreError> {
        check_status_size(status_size)?;
        if bytes.len() > MAX_DECODED_BYTES {
            return Err(CoreError::StatusListTooLarge { max_bytes: MAX_DECODED_BYTES });
        }
        // At most 2^27 bits: no overflow.
        let entries = (bytes.len() as u64 * 8) / u64::from(status_size);
        if entries < MIN_ENTRIES {
            return Err(CoreError::StatusListLength { entries, min: MIN_ENTRIES });
        }
        Ok(Self { status_size, entries, bits: bytes })
    }

    /// The number of bits per entry.
    pub fn status_size(&self) -> u8 {
        self.status_size
    }

    /// The number of entries.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The uncompressed bitstring.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// The position of the first bit of entry `index`, after a range check.
    fn first_bit(&self, index: u64) -> Result<u64, CoreError> {
        if index >= self.entries {
            return Err(CoreError::StatusListIndexOutOfRange { index, entries: self.entries });
        }
        // index < entries <= 2^27, so no overflow.
        Ok(index * u64::from(self.status_size))
    }

    fn bit(&self, pos: u64) -> bool {
        let byte = usize::try_from(pos / 8).ok().and_then(|i| self.bits.get(i));
        byte.is_some_and(|b| b & (0x80 >> (pos % 8)) != 0)
    }

    fn set_bit(&mut self, pos: u64, on: bool) {
        let mask = 0x80u8 >> (pos % 8);
        if let Some(b) = usize::try_from(pos / 8).ok().and_then(|i| self.bits.get_mut(i)) {
            if on {
                *b |= mask;
            } else {
                *b &= !mask;
            }
        }
    }

    /// The status value of entry `index`.
    pub fn get(&self, index: u64) -> Result<u8, CoreError> {
        let first = self.first_bit(index)?;
        let mut value = 0u8;
        for j in 0..u64::from(self.status_size) {
            value = (value << 1) | u8::from(self.bit(first + j));
        }
        Ok(value)
    }

    /// Sets the status value of entry `index`; `value` must fit in `status_size` bits.
    pub fn set(&mut self, index: u64, value: u8) -> Result<(), CoreError> {
        let first = self.first_bit(index)?;
        let size = self.status_size;
        if size < 8 && value >> size != 0 {
            return Err(CoreError::StatusListValueOutOfRange { value, status_size: size });
        }
        for j in 0..size {
            let on = (value >> (size - 1 - j)) & 1 == 1;
            self.set_bit(first + u64::from(j), on);
        }
        Ok(())
    }

    /// The `encodedList` value: `u` + base64url (no padding) of the GZIP-compressed bitstring.
    pub fn encode(&self) -> Result<String, CoreError> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&self.bits)
            .map_err(|_| CoreError::StatusListEncoding("GZIP compression failed"))?;
        let compressed =
            gz.finish().map_err(|_| CoreError::StatusListEncoding("GZIP compression failed"))?;
        Ok(multibase::encode(multibase::Base::Base64Url, compressed))
    }

    /// Decodes an `encodedList` value into a list of `status_size`-bit entries.
    ///
    /// Errors: [`CoreError::StatusListEncoding`] for a prefix other than `u`, bad base64url, bad
    /// or trailing GZIP data; [`CoreError::StatusListTooLarge`] for input or output over the
    /// limits; [`CoreError::StatusListLength`] for fewer than [`MIN_ENTRIES`] entries.
    pub fn decode(encoded: &str, status_size: u8) -> Result<Self, CoreError> {
        check_status_size(status_size)?;
        if encoded.len() > MAX_ENCODED_CHARS {
            return Err(CoreError::StatusListTooLarge { max_bytes: MAX_DECODED_BYTES });
        }
        let b64 = match encoded.strip_prefix(MULTIBASE_BASE64URL) {
            Some(rest) => rest,
            None if encoded.is_empty() => {
                return Err(CoreError::StatusListEncoding("empty encodedList"));
            }
            None => {
                return Err(CoreError::StatusListEncoding(
                    "encodedList must use the multibase prefix `u` (base64url, no padding)",
                ));
            }
        };
        let compressed = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| CoreError::StatusListEncoding("encodedList is not unpadded base64url"))?;
        let bits = gunzip_capped(&compressed, MAX_DECODED_BYTES)?;
        Self::from_bytes(bits, status_size)
    }
}

/// Decompresses exactly one GZIP member, refusing output over `max` bytes and trailing input.
fn gunzip_capped(compressed: &[u8], max: usize) -> Result<Vec<u8>, CoreError> {
    let mut decoder = flate2::bufread::GzDecoder::new(compressed);
    let mut out = Vec::new();
    let cap = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    (&mut decoder)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|_| CoreError::StatusListEncoding("encodedList is not valid GZIP data"))?;
    if out.len() > max {
        return Err(CoreError::StatusListTooLarge { max_bytes: max });
    }
    if !decoder.into_inner().is_empty() {
        return Err(CoreError::StatusListEncoding("trailing data after the GZIP member"));
    }
    Ok(out)
}

/// An absolute URL, by the same rule as the credential checks ([`crate::vc::is_url`]).
fn check_url(what: &'static str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if !crate::vc::is_url(s) {
        return Err(format!("{what} is not a URL"));
    }
    Ok(())
}

/// Parses a decimal index as the spec writes it: ASCII digits, no sign, no leading zeros.
fn parse_decimal_index(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// One value of a status list of purpose `message` and its meaning (`statusMessage`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusMessage {
    /// The value, as a hexadecimal string with a `0x` prefix, e.g. `"0x2"`.
    pub status: String,
    /// A human-readable description of the value.
    pub message: String,
}

impl StatusMessage {
    /// The value of `status`, if it is well-formed hexadecimal with a `0x` prefix.
    pub fn value(&self) -> Option<u8> {
        let hex = self.status.strip_prefix("0x")?;
        if hex.is_empty() || hex.len() > 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u8::from_str_radix(hex, 16).ok()
    }
}

/// A `credentialStatus` entry that points into a status list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BitstringStatusListEntry {
    /// Optional identifier of the entry itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always `BitstringStatusListEntry`.
    #[serde(rename = "type")]
    pub type_: String,
    /// What the referenced list is for.
    pub status_purpose: StatusPurpose,
    /// The entry's index in the list, as a decimal string (as the spec requires).
    pub status_list_index: String,
    /// The URL of the `BitstringStatusListCredential`.
    pub status_list_credential: String,
    /// Bits per entry; absent means 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_size: Option<u8>,
    /// The meaning of each value; required when `statusSize` is greater than 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<Vec<StatusMessage>>,
    /// Optional URL(s) describing the status values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reference: Option<Value>,
}

impl BitstringStatusListEntry {
    /// A one-bit entry (`revocation` or `suspension`) at `index` of the list published at
    /// `status_list_credential`.
    pub fn new(
        id: Option<String>,
        purpose: StatusPurpose,
        index: u64,
        status_list_credential: impl Into<String>,
    ) -> Self {
        Self {
            id,
            type_: ENTRY_TYPE.to_owned(),
            status_purpose: purpose,
            status_list_index: index.to_string(),
            status_list_credential: status_list_credential.into(),
            status_size: None,
            status_message: None,
            status_reference: None,
        }
    }

    /// Parses and validates an entry from JSON.
    pub fn from_json(value: &Value) -> Result<Self, CoreError> {
        let entry: Self = serde_json::from_value(value.clone())
            .map_err(|e| CoreError::StatusListEntry(e.to_string()))?;
        entry.validate()?;
        Ok(entry)
    }

    /// The entry as JSON.
    pub fn to_json(&self) -> Value {
        // Serialising plain strings, numbers and values cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The bits per entry (1 when absent).
    pub fn status_size(&self) -> u8 {
        self.status_size.unwrap_or(1)
    }

    /// The index in the list.
    pub fn index(&self) -> Result<u64, CoreError> {
        parse_decimal_index(&self.status_list_index).ok_or_else(|| {
            CoreError::StatusListEntry(
                "statusListIndex must be a decimal string without leading zeros".to_owned(),
            )
        })
    }

    /// Checks the entry against the spec's rules.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = CoreError::StatusListEntry;
        if self.type_ != ENTRY_TYPE {
            return Err(bad(format!("type must be {ENTRY_TYPE}")));
        }
        if let Some(id) = &self.id {
            check_url("id", id).map_err(bad)?;
        }
        check_url("statusListCredential", &self.status_list_credential).map_err(bad)?;
        self.index()?;
        let size = self.status_size();
        check_status_size(size)?;
        match (&self.status_message, size) {
            (None, 1) => {}
            (None, _) => {
                return Err(bad("statusMessage is required when statusSize > 1".to_owned()));
            }
            (Some(messages), _) => {
                let count = 1usize << size;
                if messages.len() != count {
                    return Err(bad(format!(
                        "statusMessage must have {count} entries for statusSize {size}"
                    )));
                }
                let mut seen = vec![false; count];
                for m in messages {
                    let slot =
                        m.value().map(usize::from).and_then(|v| seen.get_mut(v)).ok_or_else(
                            || bad(format!("bad statusMessage status {:?}", m.status)),
                        )?;
                    if *slot {
                        return Err(bad(format!("duplicate statusMessage status {:?}", m.status)));
                    }
                    *slot = true;
                }
            }
        }
        if let Some(r) = &self.status_reference {
            let ok = match r {
                Value::String(s) => check_url("statusReference", s).is_ok(),
                Value::Array(a) => {
                    !a.is_empty()
                        && a.iter().all(|v| v.as_str().is_some_and(|s| check_url("", s).is_ok()))
                }
                _ => false,
            };
            if !ok {
                return Err(bad("statusReference must be a URL or a list of URLs".to_owned()));
            }
        }
        Ok(())
    }

    /// The message for `value`, if the entry has status messages.
    pub fn message_for(&self, value: u8) -> Option<&str> {
        self.status_message
            .as_ref()?
            .iter()
            .find(|m| m.value() == Some(value))
            .map(|m| m.message.as_str())
    }
}

/// Builds an unsigned `BitstringStatusListCredential` (VC Data Model 2.0) for `list`.
///
/// `id` is the URL the credential is served at; the subject's id is `id#list`. `valid_from` is
/// an XML Schema `dateTimeStamp` chosen by the caller (this crate has no clock).
pub fn status_list_credential(
    id: &str,
    issuer: &str,
    purpose: StatusPurpose,
    valid_from: &str,
    list: &BitstringStatusList,
) -> Result<Value, CoreError> {
    let bad = CoreError::StatusListCredential;
    check_url("id", id).map_err(bad)?;
    if id.contains('#') {
        return Err(bad("id must not have a fragment".to_owned()));
    }
    check_url("issuer", issuer).map_err(bad)?;
    crate::vc::DateTimeStamp::parse(valid_from)
        .map_err(|why| bad(format!("validFrom must be a dateTimeStamp: {why}")))?;
    Ok(json!({
        "@context": [VC_V2_CONTEXT],
        "id": id,
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "issuer": issuer,
        "validFrom": valid_from,
        "credentialSubject": {
            "id": format!("{id}#list"),
            "type": SUBJECT_TYPE,
            "statusPurpose": purpose.as_str(),
            "encodedList": list.encode()?,
        },
    }))
}

/// The parts of a `BitstringStatusListCredential` that status checks need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusListCredentialInfo {
    /// The credential's `id` (the URL entries point at).
    pub id: String,
    /// The issuer's id (the `issuer` string, or the `id` of an `issuer` object).
    pub issuer: String,
    /// The purposes the list serves (`statusPurpose`, one or several).
    pub purposes: Vec<StatusPurpose>,
    /// The decoded list.
    pub list: BitstringStatusList,
}

fn json_types(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Reads a `BitstringStatusListCredential` and decodes its list as `status_size`-bit entries.
///
/// Structural checks only: the caller must have verified the credential's proof and validity
/// period (see the module docs).
pub fn parse_status_list_credential(
    vc: &Value,
    status_size: u8,
) -> Result<StatusListCredentialInfo, CoreError> {
    let bad = |m: &str| CoreError::StatusListCredential(m.to_owned());
    let obj = vc.as_object().ok_or_else(|| bad("not a JSON object"))?;
    if !json_types(obj.get("type")).contains(&CREDENTIAL_TYPE) {
        return Err(bad("type does not include BitstringStatusListCredential"));
    }
    let id = obj.get("id").and_then(Value::as_str).ok_or_else(|| bad("missing id"))?;
    let issuer = match obj.get("issuer") {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(o)) => o.get("id").and_then(Value::as_str).unwrap_or_default(),
        _ => "",
    };
    if issuer.is_empty() {
        return Err(bad("missing issuer"));
    }
    let subject = obj
        .get("credentialSubject")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("credentialSubject must be one object"))?;
    if json_types(subject.get("type")) != [SUBJECT_TYPE] {
        return Err(bad("credentialSubject type must be BitstringStatusList"));
    }
    let purposes = match subject.get("statusPurpose") {
        Some(Value::String(s)) => vec![StatusPurpose::parse(s)?],
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| v.as_str().ok_or_else(|| bad("statusPurpose must be strings")))
            .map(|s| s.and_then(StatusPurpose::parse))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("missing statusPurpose")),
    };
    let encoded = subject
        .get("encodedList")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing encodedList"))?;
    let list = BitstringStatusList::decode(encoded, status_size)?;
    Ok(StatusListCredentialInfo { id: id.to_owned(), issuer: issuer.to_owned(), purposes, list })
}

/// The outcome of looking an entry up in its status list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusResult {
    /// The purpose that was checked.
    pub purpose: StatusPurpose,
    /// The entry's value in the list.
    pub status: u8,
    /// `true` when the value is 0 (not revoked, not suspended).
    pub valid: bool,
    /// The entry's message for the value, if it has status messages.
    pub message: Option<String>,
}

/// Looks `entry` up in the status list credential `vc` (the spec's validation algorithm, minus
/// fetching the credential and verifying its proofs, which the caller must have done).
///
/// Fails when the credential is not the one the entry names, does not serve the entry's
/// purpose, holds too short a list, or the index is out of range.
pub fn resolve_status(
    entry: &BitstringStatusListEntry,
    vc: &Value,
) -> Result<StatusResult, CoreError> {
    entry.validate()?;
    let info = parse_status_list_credential(vc, entry.status_size())?;
    if info.id != entry.status_list_credential {
        return Err(CoreError::StatusListCredential(
            "credential id differs from the entry's statusListCredential".to_owned(),
        ));
    }
    if !info.purposes.contains(&entry.status_purpose) {
        return Err(CoreError::StatusListPurposeMismatch {
            purpose: entry.status_purpose.as_str(),
        });
    }
    let status = info.list.get(entry.index()?)?;
    Ok(StatusResult {
        purpose: entry.status_purpose,
        status,
        valid: status == 0,
        message: entry.message_for(status).map(str::to_owned),
    })
}
