//! Witnesses (docs/protocol.md §E5): the `add-checkpoint` request of C2SP `tlog-witness`, the
//! rules a witness applies before it cosigns, and C2SP `tlog-cosignature` v1 lines with an
//! ATP ML-DSA-65 line beside the Ed25519 one.
//!
//! - **Request** ([`AddCheckpoint`]): `old <size>\n`, at most [`MAX_PROOF_LINES`] base64
//!   consistency-proof hashes (one per line), an empty line, then the signed checkpoint.
//! - **Rules** ([`check_add_checkpoint`]): the checkpoint must carry both of the log's signature
//!   lines; the old size must not exceed the new size and must equal the size the witness last
//!   cosigned; a tree of size 0 must have the empty root; from size 0 the proof must be empty;
//!   at equal sizes the roots must be equal; otherwise the RFC 9162 consistency proof must
//!   verify. Only then may the witness store the new size and cosign.
//! - **Cosignature** ([`cosign`], [`verify_cosignature`]): two signature lines under the
//!   witness's name, each `base64(key ID || u64 big-endian timestamp || signature)` over
//!   `cosignature/v1\ntime <timestamp>\n<checkpoint body>`. The Ed25519 line is the standard
//!   type `0x04` (key ID `SHA-256(name || 0x0A || 0x04 || pk)[:4]`); the ML-DSA-65 line is
//!   ATP-specific, type `0xFF || "atp-mldsa65-cosignature"`, signed with context
//!   `atp/cosignature/v1`. A verifier requires both, as it requires both checkpoint lines.

use atp_crypto::{AlgorithmId, PublicKey, SigningContext, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::CoreError;
use crate::checkpoint::{Checkpoint, KeyId, NoteSignature, SignedNote, VerifierKey};
use crate::checkpoint::{check_key_name, verify_note_with};
use crate::tlog::{self, Hash};

/// The most consistency-proof lines a request may carry (C2SP tlog-witness).
pub const MAX_PROOF_LINES: usize = 63;
/// The signed-note signature type of an Ed25519 cosignature (C2SP tlog-cosignature).
pub const COSIG_TYPE_ED25519: u8 = 0x04;
/// The ATP-specific identifier of ML-DSA-65 cosignatures (after type `0xFF`).
pub const MLDSA65_COSIGNATURE_IDENTIFIER: &[u8] = b"atp-mldsa65-cosignature";
/// The first line of the cosigned message.
const COSIGNATURE_HEADER: &str = "cosignature/v1";

/// A parsed `add-checkpoint` request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness last cosigned.
    pub old_size: u64,
    /// The consistency proof from `old_size` to the new checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub note: String,
}

impl AddCheckpoint {
    /// Parses a request body. Bounded: the note by [`crate::checkpoint::MAX_NOTE_BYTES`], the
    /// proof by [`MAX_PROOF_LINES`].
    pub fn parse(body: &[u8]) -> Result<Self, CoreError> {
        let bad = CoreError::WitnessRequestMalformed;
        let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8"))?;
        let (first, mut rest) = text.split_once('\n').ok_or(bad("no old size line"))?;
        let size = first.strip_prefix("old ").ok_or(bad("the first line is not `old <size>`"))?;
        let canonical = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let old_size: u64 = match canonical.then(|| size.parse().ok()).flatten() {
            Some(n) => n,
            None => return Err(bad("the old size is not a decimal without leading zeros")),
        };
        let mut proof = Vec::new();
        loop {
            let (line, after) =
                rest.split_once('\n').ok_or(bad("no empty line before the note"))?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(bad("more than 63 consistency proof lines"));
            }
            let raw = STANDARD.decode(line).map_err(|_| bad("a proof line is not base64"))?;
            proof.push(
                <Hash>::try_from(raw.as_slice())
                    .map_err(|_| bad("a proof hash is not 32 bytes"))?,
            );
        }
        Ok(Self { old_size, proof, note: rest.to_owned() })
    }

    /// The request body.
    pub fn to_body(&self) -> String {
        let mut body = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            body.push_str(&STANDARD.encode(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&self.note);
        body
    }
}

/// The origin a checkpoint note names, read without verifying it (to pick the log's keys).
pub fn note_origin(note: &str) -> Result<String, CoreError> {
    let parsed = SignedNote::parse(note)?;
    Ok(Checkpoint::parse_body(&parsed.text)?.origin)
}

/// What a witness last cosigned for one log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cosigned {
    /// The tree size.
    pub size: u64,
    /// The root hash.
    pub root_hash: Hash,
}

/// The witness's rules for `request` against the log's keys and what it last cosigned for that
/// log (`None`: never). Returns the checkpoint to store and cosign.
///
/// Errors: the checkpoint's own parse and signature errors (`CHECKPOINT_*`),
/// `WITNESS_REQUEST_MALFORMED` (old size above the new size), `WITNESS_OLD_SIZE_MISMATCH`
/// (carrying the size last cosigned), `WITNESS_INCONSISTENT` (a bad root for size 0, a proof
/// from size 0, two roots for one size, or a consistency proof that does not verify).
pub fn check_add_checkpoint(
    request: &AddCheckpoint,
    ed25519: &VerifierKey,
    mldsa65: &VerifierKey,
    last: Option<Cosigned>,
) -> Result<Checkpoint, CoreError> {
    let checkpoint = verify_note_with(&request.note, ed25519, mldsa65)?;
    if request.old_size > checkpoint.size {
        return Err(CoreError::WitnessRequestMalformed("the old size exceeds the checkpoint's"));
    }
    let latest = last.map_or(0, |c| c.size);
    if request.old_size != latest {
        return Err(CoreError::WitnessOldSize { latest });
    }
    let inconsistent = CoreError::WitnessInconsistent;
    if checkpoint.size == 0 && checkpoint.root_hash != tlog::root_from_leaf_hashes(&[]) {
        return Err(inconsistent("a tree of size 0 must have the empty root"));
    }
    match last {
        _ if request.old_size == 0 => {
            if !request.proof.is_empty() {
                return Err(inconsistent("a proof from size 0 must be empty"));
            }
        }
        Some(previous) if previous.size == checkpoint.size => {
            if previous.root_hash != checkpoint.root_hash {
                return Err(inconsistent("two roots for one tree size"));
            }
        }
        Some(previous) => {
            tlog::verify_consistency(
                previous.size,
                checkpoint.size,
                &previous.root_hash,
                &checkpoint.root_hash,
                &request.proof,
            )
            .map_err(|_| inconsistent("the consistency proof does not verify"))?;
        }
        None => return Err(CoreError::WitnessOldSize { latest: 0 }),
    }
    Ok(checkpoint)
}

/// A witness's public keys under its name: what a client needs to check its cosignatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignerKey {
    name: String,
    ed25519: PublicKey,
    mldsa65: PublicKey,
    ed25519_id: KeyId,
    mldsa65_id: KeyId,
}

fn type_bytes(alg: AlgorithmId) -> Result<Vec<u8>, CoreError> {
    match alg {
        AlgorithmId::Ed25519 => Ok(vec![COSIG_TYPE_ED25519]),
        AlgorithmId::MlDsa65 => {
            let mut v = vec![crate::checkpoint::SIG_TYPE_IDENTIFIED];
            v.extend_from_slice(MLDSA65_COSIGNATURE_IDENTIFIER);
            Ok(v)
        }
        other => Err(CoreError::CheckpointKeyAlgorithm { algorithm: other.name() }),
    }
}

fn cosigner_key_id(name: &str, key: &PublicKey) -> Result<KeyId, CoreError> {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a]);
    h.update(type_bytes(key.algorithm())?);
    h.update(key.as_bytes());
    let digest: [u8; 32] = h.finalize().into();
    Ok([digest[0], digest[1], digest[2], digest[3]])
}

impl CosignerKey {
    /// The cosigner `name` with its Ed25519 and ML-DSA-65 public keys.
    pub fn new(name: &str, ed25519: PublicKey, mldsa65: PublicKey) -> Result<Self, CoreError> {
        check_key_name(name)?;
        for (key, want) in [(&ed25519, AlgorithmId::Ed25519), (&mldsa65, AlgorithmId::MlDsa65)] {
            if key.algorithm() != want {
                return Err(CoreError::CheckpointKeyAlgorithm {
                    algorithm: key.algorithm().name(),
                });
            }
        }
        Ok(Self {
            ed25519_id: cosigner_key_id(name, &ed25519)?,
            mldsa65_id: cosigner_key_id(name, &mldsa65)?,
            name: name.to_owned(),
            ed25519,
            mldsa65,
        })
    }

    /// The cosigner of a composite (ML-DSA-65 + Ed25519) key.
    pub fn from_composite(name: &str, key: &PublicKey) -> Result<Self, CoreError> {
        let (mldsa65, ed25519) = key
            .components()
            .ok_or(CoreError::CheckpointKeyAlgorithm { algorithm: key.algorithm().name() })?;
        Self::new(name, ed25519, mldsa65)
    }

    /// The cosigner's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The two verifier key strings, Ed25519 first: `<name>+<hex key ID>+<base64(type bytes ||
    /// public key)>`. The Ed25519 one is the standard C2SP form for type `0x04`.
    pub fn vkeys(&self) -> [String; 2] {
        let vkey = |key: &PublicKey, id: &KeyId| {
            let mut raw = type_bytes(key.algorithm()).unwrap_or_default();
            raw.extend_from_slice(key.as_bytes());
            format!("{}+{}+{}", self.name, hex::encode(id), STANDARD.encode(raw))
        };
        [vkey(&self.ed25519, &self.ed25519_id), vkey(&self.mldsa65, &self.mldsa65_id)]
    }

    /// Parses the two verifier key strings of [`CosignerKey::vkeys`] (in either order).
    pub fn from_vkeys(first: &str, second: &str) -> Result<Self, CoreError> {
        let parse = |vkey: &str| -> Result<(String, PublicKey), CoreError> {
            let bad = CoreError::CheckpointVerifierKey;
            let mut parts = vkey.splitn(3, '+');
            let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad("expected <name>+<key ID>+<key>"));
            };
            let raw = STANDARD.decode(b64).map_err(|_| bad("key is not base64"))?;
            let ml_prefix = type_bytes(AlgorithmId::MlDsa65)?;
            let key = if let Some(pk) = raw.strip_prefix(&[COSIG_TYPE_ED25519]) {
                PublicKey::from_bytes(AlgorithmId::Ed25519, pk)?
            } else if let Some(pk) = raw.strip_prefix(ml_prefix.as_slice()) {
                PublicKey::from_bytes(AlgorithmId::MlDsa65, pk)?
            } else {
                return Err(bad("not a cosignature key type"));
            };
            check_key_name(name)?;
            if hex::encode(cosigner_key_id(name, &key)?) != id_hex {
                return Err(bad("key ID does not match the key"));
            }
            Ok((name.to_owned(), key))
        };
        let (a, b) = (parse(first)?, parse(second)?);
        if a.0 != b.0 {
            return Err(CoreError::CheckpointVerifierKey("the two keys name two cosigners"));
        }
        let (ed, ml) =
            if a.1.algorithm() == AlgorithmId::Ed25519 { (a.1, b.1) } else { (b.1, a.1) };
        Self::new(&a.0, ed, ml)
    }
}

fn cosigned_message(checkpoint: &Checkpoint, time: u64) -> Result<String, CoreError> {
    Ok(format!("{COSIGNATURE_HEADER}\ntime {time}\n{}", checkpoint.to_body()?))
}

fn context(alg: AlgorithmId) -> &'static [u8] {
    match alg {
        AlgorithmId::Ed25519 => b"",
        _ => SigningContext::Cosignature.as_bytes(),
    }
}

/// The witness's two cosignature lines (Ed25519, then ML-DSA-65) on `checkpoint`, at `time`
/// (POSIX seconds, not 0), by the composite `key` under `name`.
pub fn cosign(
    checkpoint: &Checkpoint,
    name: &str,
    time: u64,
    key: &SigningKey,
) -> Result<String, CoreError> {
    if time == 0 || time > i64::MAX as u64 {
        return Err(CoreError::WitnessRequestMalformed("a cosignature time must be in 1..2^63"));
    }
    let (mldsa65, ed25519) =
        key.components().ok_or(CoreError::CheckpointKeyAlgorithm { algorithm: "composite" })?;
    let cosigner = CosignerKey::new(name, ed25519.public_key(), mldsa65.public_key())?;
    let message = cosigned_message(checkpoint, time)?;
    let mut lines = String::new();
    for (signer, key_id) in [(ed25519, cosigner.ed25519_id), (mldsa65, cosigner.mldsa65_id)] {
        let mut signature = time.to_be_bytes().to_vec();
        signature.extend(signer.sign(message.as_bytes(), context(signer.algorithm()))?);
        lines.push_str(&NoteSignature { name: name.to_owned(), key_id, signature }.to_line());
    }
    Ok(lines)
}

/// Checks that `note` (a checkpoint with any signature lines) carries valid cosignatures from
/// both of `cosigner`'s keys, with one timestamp; returns that timestamp. The checkpoint's own
/// signatures are not checked here.
pub fn verify_cosignature(note: &str, cosigner: &CosignerKey) -> Result<u64, CoreError> {
    let parsed = SignedNote::parse(note)?;
    let checkpoint = Checkpoint::parse_body(&parsed.text)?;
    let mut time = None;
    let keys = [
        (&cosigner.ed25519, cosigner.ed25519_id, "Ed25519"),
        (&cosigner.mldsa65, cosigner.mldsa65_id, "ML-DSA-65"),
    ];
    for (key, key_id, algorithm) in keys {
        let mut lines =
            parsed.signatures.iter().filter(|s| s.name == cosigner.name && s.key_id == key_id);
        let line = lines.next().ok_or(CoreError::CheckpointSignatureMissing { algorithm })?;
        if lines.next().is_some() {
            return Err(CoreError::CheckpointSignatureLine(
                "more than one line from a cosigner key",
            ));
        }
        let (stamp, signature) = line
            .signature
            .split_at_checked(8)
            .ok_or(CoreError::CheckpointSignatureLine("a cosignature has no timestamp"))?;
        let stamp = u64::from_be_bytes(stamp.try_into().unwrap_or_default());
        if stamp == 0 || stamp > i64::MAX as u64 || time.is_some_and(|t| t != stamp) {
            return Err(CoreError::CheckpointSignatureInvalid { algorithm });
        }
        let message = cosigned_message(&checkpoint, stamp)?;
        key.verify(message.as_bytes(), context(key.algorithm()), signature)
            .map_err(|_| CoreError::CheckpointSignatureInvalid { algorithm })?;
        time = Some(stamp);
    }
    time.ok_or(CoreError::CheckpointSignatureMissing { algorithm: "Ed25519" })
}

/// From a witness's `answer` to `add-checkpoint` on `checkpoint_note`, exactly the two lines
/// of `cosigner`, rebuilt from their decoded bytes and verified; anything else in the answer
/// (other lines, a copy of a log line, junk) is dropped, so a witness can add to a note only
/// its own cosignature.
pub fn cosignature_lines(
    checkpoint_note: &str,
    answer: &str,
    cosigner: &CosignerKey,
) -> Result<String, CoreError> {
    let parsed = SignedNote::parse(&format!("{checkpoint_note}{answer}"))?;
    let mut lines = String::new();
    for key_id in [cosigner.ed25519_id, cosigner.mldsa65_id] {
        let mut matching =
            parsed.signatures.iter().filter(|s| s.name == cosigner.name && s.key_id == key_id);
        let (Some(line), None) = (matching.next(), matching.next()) else {
            return Err(CoreError::CheckpointSignatureLine(
                "the answer does not hold exactly one line per cosigner key",
            ));
        };
        lines.push_str(&line.to_line());
    }
    verify_cosignature(&format!("{checkpoint_note}{lines}"), cosigner)?;
    Ok(lines)
}

/// The most witnesses a policy names.
pub const MAX_POLICY_WITNESSES: usize = 32;

/// A client's witness policy: a checkpoint counts only with valid cosignatures (both lines)
/// from at least `quorum` of `witnesses`.
///
/// Text form (a file, `ATP_WITNESSES`): a `quorum <k>` line, then one line per witness,
/// `witness <Ed25519 vkey> <ML-DSA-65 vkey>` ([`CosignerKey::vkeys`]); blank lines and lines
/// starting with `#` are ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessPolicy {
    quorum: usize,
    witnesses: Vec<CosignerKey>,
}

impl WitnessPolicy {
    /// `quorum` of `witnesses`: 1 ≤ quorum ≤ witnesses ≤ [`MAX_POLICY_WITNESSES`], names
    /// distinct.
    pub fn new(quorum: usize, witnesses: Vec<CosignerKey>) -> Result<Self, CoreError> {
        let bad = |m: String| CoreError::WitnessPolicyInvalid(m);
        if witnesses.len() > MAX_POLICY_WITNESSES {
            return Err(bad(format!("more than {MAX_POLICY_WITNESSES} witnesses")));
        }
        if quorum == 0 || quorum > witnesses.len() {
            return Err(bad(format!("quorum {quorum} of {} witnesses", witnesses.len())));
        }
        // Distinct names and distinct keys: the signed message does not name the witness, so
        // one key listed under two names would let one cosignature count twice.
        let mut names: Vec<&str> = witnesses.iter().map(CosignerKey::name).collect();
        let mut keys: Vec<&[u8]> =
            witnesses.iter().flat_map(|w| [w.ed25519.as_bytes(), w.mldsa65.as_bytes()]).collect();
        names.sort_unstable();
        keys.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) || keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(bad("a witness (a name or a key) is listed twice".into()));
        }
        Ok(Self { quorum, witnesses })
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, CoreError> {
        let bad = |m: String| CoreError::WitnessPolicyInvalid(m);
        let mut quorum = None;
        let mut witnesses = Vec::new();
        for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["quorum", k] if quorum.is_none() => {
                    quorum = Some(k.parse().map_err(|_| bad(format!("line {n}: bad quorum")))?);
                }
                ["witness", a, b] => witnesses.push(
                    CosignerKey::from_vkeys(a, b).map_err(|e| bad(format!("line {n}: {e}")))?,
                ),
                _ => {
                    return Err(bad(format!(
                        "line {n}: expected `quorum <k>` once or `witness <vkey> <vkey>`"
                    )));
                }
            }
            if witnesses.len() > MAX_POLICY_WITNESSES {
                return Err(bad(format!("more than {MAX_POLICY_WITNESSES} witnesses")));
            }
        }
        Self::new(quorum.ok_or_else(|| bad("no `quorum <k>` line".into()))?, witnesses)
    }

    /// The quorum.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// The witnesses.
    pub fn witnesses(&self) -> &[CosignerKey] {
        &self.witnesses
    }

    /// Counts the witnesses with a valid cosignature on `note` (the checkpoint's own lines
    /// are checked elsewhere); fewer than the quorum is `WITNESS_QUORUM_NOT_MET`.
    pub fn check(&self, note: &str) -> Result<usize, CoreError> {
        let valid = self.witnesses.iter().filter(|w| verify_cosignature(note, w).is_ok()).count();
        if valid < self.quorum {
            return Err(CoreError::WitnessQuorum { valid, quorum: self.quorum });
        }
        Ok(valid)
    }
}
