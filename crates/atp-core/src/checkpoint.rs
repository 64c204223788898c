//! Signed transparency-log checkpoints: the C2SP `tlog-checkpoint` body inside a C2SP
//! `signed-note`, signed with Ed25519 **and** ML-DSA-65.
//!
//! # Format
//!
//! A checkpoint body (C2SP tlog-checkpoint) is
//!
//! ```text
//! <origin>\n
//! <tree size, decimal>\n
//! <root hash, base64 standard encoding with padding>\n
//! [<extension line>\n]*
//! ```
//!
//! and a signed note (C2SP signed-note) is that text, a blank line, then one line per signature:
//!
//! ```text
//! — <key name> <base64(4-byte key ID || signature)>\n
//! ```
//!
//! where `—` is U+2014 EM DASH followed by a space. The signature is over the note text, i.e. the
//! body bytes including the final newline.
//!
//! # Keys
//!
//! - **Ed25519** (signature type `0x01` of the signed-note spec): key ID =
//!   `SHA-256(name || 0x0A || 0x01 || public key)[:4]`; signature = pure Ed25519 over the text.
//!   Stock C2SP/`sumdb/note` verifiers check this line unchanged, and its verifier key has the
//!   standard `<name>+<hex key ID>+<base64(0x01 || public key)>` form ([`VerifierKey::to_vkey`]).
//! - **ML-DSA-65**: signed-note reserves type `0xff` for signature types named by an identifier
//!   string. **ATP-specific choice:** the identifier is `atp-mldsa65`, so key ID =
//!   `SHA-256(name || 0x0A || 0xFF || "atp-mldsa65" || public key)[:4]` and the verifier key
//!   encodes `0xFF || "atp-mldsa65" || public key`. The signature is FIPS 204 ML-DSA-65 over the
//!   text with `ctx = "atp/checkpoint/v1"` ([`SigningContext::Checkpoint`]), so an ML-DSA
//!   checkpoint signature can never be replayed as any other ATP signature. Other C2SP tools
//!   treat this line as a signature by an unknown key and ignore it, as the spec requires.
//!
//! # Policy
//!
//! Under the ATP policy a checkpoint verifies only if it carries a valid Ed25519 line **and** a
//! valid ML-DSA-65 line from the log's keys: there is no option to accept one alone, so a
//! downgrade to classical-only signatures is impossible. Lines from other keys (for example
//! witness cosignatures) are ignored; a line that names one of the log's keys but does not verify
//! fails the whole note.
//!
//! Parsing is strict and bounded: at most [`MAX_NOTE_BYTES`] bytes and [`MAX_SIGNATURES`]
//! signature lines, no control characters other than newline, canonical base64, a non-empty
//! origin without surrounding whitespace, a decimal size without leading zeros, a root hash of
//! exactly 32 bytes and non-empty extension lines.
//!
//! Verifying a note proves who signed it, not which log it describes: callers must also check
//! that [`Checkpoint::origin`] is the log they expect.

use std::fmt;

use atp_crypto::{AlgorithmId, PublicKey, SigningContext, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::CoreError;

/// The largest signed note accepted, in bytes (1 MiB).
pub const MAX_NOTE_BYTES: usize = 1 << 20;

/// The largest number of signature lines accepted in one note.
pub const MAX_SIGNATURES: usize = 100;

/// The signed-note signature type of Ed25519.
pub const SIG_TYPE_ED25519: u8 = 0x01;

/// The signed-note signature type reserved for types named by an identifier string.
pub const SIG_TYPE_IDENTIFIED: u8 = 0xff;

/// The ATP-specific identifier of ML-DSA-65 note signatures (after type `0xff`).
pub const MLDSA65_IDENTIFIER: &[u8] = b"atp-mldsa65";

/// The start of every signature line: U+2014 EM DASH and a space.
const SIG_LINE_PREFIX: &str = "\u{2014} ";

/// A signed-note key ID: the first four bytes of a hash of the key name, type and public key.
pub type KeyId = [u8; 4];

const ED25519_NAME: &str = "Ed25519";
const MLDSA65_NAME: &str = "ML-DSA-65";

/// A transparency-log checkpoint (C2SP tlog-checkpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line, e.g. `atp.example.com/log`.
    pub origin: String,
    /// The number of leaves in the tree.
    pub size: u64,
    /// The RFC 9162 root hash of the tree.
    pub root_hash: [u8; 32],
    /// Optional extension lines (opaque, non-empty, without the newline).
    pub extensions: Vec<String>,
}

/// No ASCII control characters other than newline (a signed-note rule for the whole note).
fn check_text_chars(s: &str) -> bool {
    !s.chars().any(|c| c.is_ascii_control() && c != '\n')
}

fn check_origin(origin: &str) -> Result<(), CoreError> {
    if origin.is_empty() {
        return Err(CoreError::CheckpointOrigin("empty"));
    }
    if origin.contains('\n') || !check_text_chars(origin) {
        return Err(CoreError::CheckpointOrigin("contains a newline or control character"));
    }
    if origin.trim() != origin {
        return Err(CoreError::CheckpointOrigin("leading or trailing whitespace"));
    }
    Ok(())
}

fn check_extension(line: &str) -> Result<(), CoreError> {
    if line.is_empty() || line.contains('\n') || !check_text_chars(line) {
        return Err(CoreError::CheckpointExtension);
    }
    Ok(())
}

fn parse_size(s: &str) -> Result<u64, CoreError> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return Err(CoreError::CheckpointTreeSize);
    }
    s.parse().map_err(|_| CoreError::CheckpointTreeSize)
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root_hash: [u8; 32]) -> Self {
        Self { origin: origin.into(), size, root_hash, extensions: Vec::new() }
    }

    /// Checks the fields against the format rules.
    pub fn validate(&self) -> Result<(), CoreError> {
        check_origin(&self.origin)?;
        self.extensions.iter().try_for_each(|e| check_extension(e))
    }

    /// The checkpoint body (the note text), ending with a newline.
    pub fn to_body(&self) -> Result<String, CoreError> {
        self.validate()?;
        let mut out =
            format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root_hash));
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        Ok(out)
    }

    /// Parses a checkpoint body strictly.
    pub fn parse_body(text: &str) -> Result<Self, CoreError> {
        if text.len() > MAX_NOTE_BYTES {
            return Err(CoreError::CheckpointTooLarge { max: MAX_NOTE_BYTES });
        }
        if !check_text_chars(text) {
            return Err(CoreError::CheckpointMalformed("control character in the note"));
        }
        let Some(body) = text.strip_suffix('\n') else {
            return Err(CoreError::CheckpointMalformed("body does not end with a newline"));
        };
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CoreError::CheckpointMalformed("body has fewer than three lines"));
        };
        check_origin(origin)?;
        let size = parse_size(size)?;
        let root_hash: [u8; 32] = STANDARD
            .decode(root)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(CoreError::CheckpointRootHash)?;
        let extensions = lines
            .map(|l| check_extension(l).map(|()| l.to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { origin: origin.to_owned(), size, root_hash, extensions })
    }
}

/// One signature line of a signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key ID (first four bytes of the decoded base64).
    pub key_id: KeyId,
    /// The signature bytes (the rest of the decoded base64).
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line, including the leading em dash and the final newline.
    pub fn to_line(&self) -> String {
        let mut raw = Vec::with_capacity(4 + self.signature.len());
        raw.extend_from_slice(&self.key_id);
        raw.extend_from_slice(&self.signature);
        format!("{SIG_LINE_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }
}

/// A C2SP signed note: text plus signature lines, none of them verified yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote {
    /// The note text, ending with a newline (for a checkpoint: the body).
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

/// A signed-note key name: non-empty, no Unicode whitespace, no `+`, no control characters.
pub fn check_key_name(name: &str) -> Result<(), CoreError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '+') {
        return Err(CoreError::CheckpointKeyName);
    }
    Ok(())
}

impl SignedNote {
    /// Splits a signed note into text and signature lines, enforcing the size limits and the
    /// syntax of C2SP signed-note. Signatures are decoded but not verified.
    pub fn parse(note: &str) -> Result<Self, CoreError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(CoreError::CheckpointTooLarge { max: MAX_NOTE_BYTES });
        }
        if !check_text_chars(note) {
            return Err(CoreError::CheckpointMalformed("control character in the note"));
        }
        if !note.ends_with('\n') {
            return Err(CoreError::CheckpointMalformed("note does not end with a newline"));
        }
        // The signatures follow the last blank line; no signature line can contain one.
        let Some(split) = note.rfind("\n\n") else {
            return Err(CoreError::CheckpointMalformed("no blank line before the signatures"));
        };
        let text = &note[..=split];
        let sigs = &note[split + 2..];
        if sigs.is_empty() {
            return Err(CoreError::CheckpointMalformed("no signature lines"));
        }
        let count = sigs.matches('\n').count();
        if count > MAX_SIGNATURES {
            return Err(CoreError::CheckpointTooManySignatures { max: MAX_SIGNATURES });
        }
        let mut signatures = Vec::with_capacity(count);
        for line in sigs.split_terminator('\n') {
            let rest = line
                .strip_prefix(SIG_LINE_PREFIX)
                .ok_or(CoreError::CheckpointSignatureLine("does not start with an em dash"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or(CoreError::CheckpointSignatureLine("no space after the key name"))?;
            check_key_name(name)?;
            let raw = STANDARD
                .decode(b64)
                .map_err(|_| CoreError::CheckpointSignatureLine("signature is not base64"))?;
            if raw.len() < 5 {
                return Err(CoreError::CheckpointSignatureLine("signature too short"));
            }
            let (id, sig) = raw.split_at(4);
            let mut key_id = [0u8; 4];
            key_id.copy_from_slice(id);
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id,
                signature: sig.to_vec(),
            });
        }
        Ok(Self { text: text.to_owned(), signatures })
    }
}

impl fmt::Display for SignedNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        self.signatures.iter().try_for_each(|s| f.write_str(&s.to_line()))
    }
}

/// The signed-note type bytes of a key: `0x01` for Ed25519, `0xFF || "atp-mldsa65"` for
/// ML-DSA-65 (ATP-specific, see the module docs). Other algorithms have no note encoding.
fn type_bytes(alg: AlgorithmId) -> Result<Vec<u8>, CoreError> {
    match alg {
        AlgorithmId::Ed25519 => Ok(vec![SIG_TYPE_ED25519]),
        AlgorithmId::MlDsa65 => {
            let mut v = vec![SIG_TYPE_IDENTIFIED];
            v.extend_from_slice(MLDSA65_IDENTIFIER);
            Ok(v)
        }
        other => Err(CoreError::CheckpointKeyAlgorithm { algorithm: other.name() }),
    }
}

/// The signed-note key ID of `key` under `name`:
/// `SHA-256(name || 0x0A || type bytes || public key)[:4]`.
///
/// For ML-DSA-65 the type bytes are the ATP-specific `0xFF || "atp-mldsa65"`.
pub fn key_id(name: &str, key: &PublicKey) -> Result<KeyId, CoreError> {
    check_key_name(name)?;
    let ty = type_bytes(key.algorithm())?;
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a]);
    h.update(&ty);
    h.update(key.as_bytes());
    let digest: [u8; 32] = h.finalize().into();
    let mut id = [0u8; 4];
    id.copy_from_slice(&digest[..4]);
    Ok(id)
}

/// A note verifier key: a key name and an Ed25519 or ML-DSA-65 public key, with its key ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: KeyId,
    key: PublicKey,
}

impl VerifierKey {
    /// A verifier for `key` (Ed25519 or ML-DSA-65) under the key name `name`.
    pub fn new(name: &str, key: PublicKey) -> Result<Self, CoreError> {
        let key_id = key_id(name, &key)?;
        Ok(Self { name: name.to_owned(), key_id, key })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// The verifier key string `<name>+<hex key ID>+<base64(type bytes || public key)>`.
    ///
    /// For Ed25519 this is the standard C2SP / `sumdb/note` form; for ML-DSA-65 the type bytes
    /// are the ATP-specific `0xFF || "atp-mldsa65"`.
    pub fn to_vkey(&self) -> String {
        // The algorithm was checked in `new`.
        let mut raw = type_bytes(self.key.algorithm()).unwrap_or_default();
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.key_id), STANDARD.encode(raw))
    }

    /// Parses a verifier key string and checks that its key ID matches.
    pub fn from_vkey(vkey: &str) -> Result<Self, CoreError> {
        let bad = CoreError::CheckpointVerifierKey;
        // The name and key ID cannot contain `+`; the base64 key can.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected <name>+<key ID>+<key>"));
        };
        check_key_name(name)?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("key ID must be 8 lowercase hex digits"));
        }
        let raw = STANDARD.decode(b64).map_err(|_| bad("key is not base64"))?;
        let mldsa_prefix = type_bytes(AlgorithmId::MlDsa65)?;
        let (alg, pk) = if let Some(pk) = raw.strip_prefix(&[SIG_TYPE_ED25519]) {
            (AlgorithmId::Ed25519, pk)
        } else if let Some(pk) = raw.strip_prefix(mldsa_prefix.as_slice()) {
            (AlgorithmId::MlDsa65, pk)
        } else {
            return Err(bad("unsupported key type"));
        };
        let key = PublicKey::from_bytes(alg, pk)?;
        let vk = Self::new(name, key)?;
        if hex::encode(vk.key_id) != id_hex {
            return Err(bad("key ID does not match the key"));
        }
        Ok(vk)
    }

    fn algorithm_name(&self) -> &'static str {
        match self.key.algorithm() {
            AlgorithmId::Ed25519 => ED25519_NAME,
            _ => MLDSA65_NAME,
        }
    }

    fn ctx(&self) -> &'static [u8] {
        match self.key.algorithm() {
            AlgorithmId::Ed25519 => b"",
            _ => SigningContext::Checkpoint.as_bytes(),
        }
    }

    fn matches(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.key_id == self.key_id
    }
}

fn require_alg(alg: AlgorithmId, want: AlgorithmId) -> Result<(), CoreError> {
    if alg != want {
        return Err(CoreError::CheckpointKeyAlgorithm { algorithm: alg.name() });
    }
    Ok(())
}

fn sign_line(name: &str, key: &SigningKey, text: &str) -> Result<String, CoreError> {
    let vk = VerifierKey::new(name, key.public_key())?;
    let signature = key.sign(text.as_bytes(), vk.ctx())?;
    Ok(NoteSignature { name: name.to_owned(), key_id: vk.key_id, signature }.to_line())
}

/// Signs `checkpoint` as a signed note under the key name `name`, with an Ed25519 line followed
/// by an ML-DSA-65 line.
pub fn sign_note(
    checkpoint: &Checkpoint,
    name: &str,
    ed25519: &SigningKey,
    mldsa65: &SigningKey,
) -> Result<String, CoreError> {
    check_key_name(name)?;
    require_alg(ed25519.algorithm(), AlgorithmId::Ed25519)?;
    require_alg(mldsa65.algorithm(), AlgorithmId::MlDsa65)?;
    let text = checkpoint.to_body()?;
    let ed_line = sign_line(name, ed25519, &text)?;
    let ml_line = sign_line(name, mldsa65, &text)?;
    let note = format!("{text}\n{ed_line}{ml_line}");
    if note.len() > MAX_NOTE_BYTES {
        return Err(CoreError::CheckpointTooLarge { max: MAX_NOTE_BYTES });
    }
    Ok(note)
}

/// Verifies a signed checkpoint under the ATP policy: it must carry a valid Ed25519 line and a
/// valid ML-DSA-65 line, both under the key name `name`. Returns the parsed checkpoint.
pub fn verify_note(
    note: &str,
    name: &str,
    ed25519: &PublicKey,
    mldsa65: &PublicKey,
) -> Result<Checkpoint, CoreError> {
    require_alg(ed25519.algorithm(), AlgorithmId::Ed25519)?;
    require_alg(mldsa65.algorithm(), AlgorithmId::MlDsa65)?;
    let ed = VerifierKey::new(name, ed25519.clone())?;
    let ml = VerifierKey::new(name, mldsa65.clone())?;
    verify_note_with(note, &ed, &ml)
}

/// Like [`verify_note`], with verifier keys (which may carry different key names).
///
/// Lines from other keys are ignored; `ed25519` and `mldsa65` must each have exactly one line,
/// and it must verify. A second line from either key is refused before any signature is
/// checked, so a note costs at most two signature verifications.
pub fn verify_note_with(
    note: &str,
    ed25519: &VerifierKey,
    mldsa65: &VerifierKey,
) -> Result<Checkpoint, CoreError> {
    require_alg(ed25519.key.algorithm(), AlgorithmId::Ed25519)?;
    require_alg(mldsa65.key.algorithm(), AlgorithmId::MlDsa65)?;
    let parsed = SignedNote::parse(note)?;
    let keys = [ed25519, mldsa65];
    let mut lines: [Option<&NoteSignature>; 2] = [None, None];
    for sig in &parsed.signatures {
        for (vk, line) in keys.iter().zip(lines.iter_mut()) {
            if vk.matches(sig) {
                if line.is_some() {
                    return Err(CoreError::CheckpointSignatureLine(
                        "more than one signature line from a log key",
                    ));
                }
                *line = Some(sig);
            }
        }
    }
    for (vk, line) in keys.iter().zip(lines) {
        let sig =
            line.ok_or(CoreError::CheckpointSignatureMissing { algorithm: vk.algorithm_name() })?;
        vk.key.verify(parsed.text.as_bytes(), vk.ctx(), &sig.signature).map_err(|_| {
            CoreError::CheckpointSignatureInvalid { algorithm: vk.algorithm_name() }
        })?;
    }
    Checkpoint::parse_body(&parsed.text)
}
