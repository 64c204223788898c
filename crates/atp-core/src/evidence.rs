//! Signed trust evidence (docs/design.md §7, docs/protocol.md Part G).
//!
//! Evidence is a statement by an issuer DID about a subject DID: an [`EvidenceKind::Endorsement`]
//! (optionally scoped to a capability), an [`EvidenceKind::InteractionReceipt`] (outcome and
//! capability of one interaction, signed by **both** parties) or an
//! [`EvidenceKind::IncidentReport`] (negative, with a severity). Credentials count as evidence
//! too, but they are signed as Verifiable Credentials; the trust engine derives them from the
//! credentials a node verified.
//!
//! The wire form is JSON, and what is signed is the JCS canonical form of the body alone:
//!
//! ```text
//! {"body": {…}, "sig": b64u(issuer composite signature), "subjectSig": b64u(…)}   (receipts)
//! {"body": {…}, "sig": b64u(issuer composite signature)}                          (otherwise)
//! signed message = JCS(body), ctx = "atp/evidence/v1"
//! content hash   = SHA-256(JCS(body))
//! ```
//!
//! The content hash identifies the evidence: ML-DSA signing is randomised, so the same body
//! signed twice is the same evidence (idempotent), and it is the `data_hash` of the evidence's
//! transparency-log entry. [`verify`] checks, in this order: limits and shape
//! (`EVIDENCE_TOO_LARGE`, `EVIDENCE_MALFORMED`), self-evidence (`EVIDENCE_SELF`), the creation
//! time against the verifier's clock (`EVIDENCE_NOT_YET_VALID`), each signer's key
//! (`EVIDENCE_UNKNOWN_SIGNER`, `EVIDENCE_ALGORITHM_NOT_ALLOWED`,
//! `EVIDENCE_KEY_NOT_VALID_AT_CREATION`) and each signature (`EVIDENCE_BAD_SIGNATURE`).

use atp_crypto::{CryptoProvider, SigningContext, SigningKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize};

use crate::CoreError;
use crate::did::validate_did;
use crate::kel::KeyValidity;
use crate::kel::parse_timestamp;

/// The format version of an evidence body.
pub const EVIDENCE_VERSION: &str = "atp/evidence/1";

/// The largest signed evidence accepted, in bytes of JSON (two composite signatures in base64url
/// are about 9 KiB).
pub const MAX_EVIDENCE_BYTES: usize = 32 * 1024;

/// The longest DID (issuer or subject), in bytes.
pub const MAX_DID_BYTES: usize = 512;

/// The longest capability, in bytes.
pub const MAX_CAPABILITY_BYTES: usize = 128;

/// The longest base64url signature text accepted (a composite ML-DSA-65 + Ed25519 signature is
/// 4498 characters).
pub const MAX_SIGNATURE_CHARS: usize = 8192;

/// The default tolerated clock skew for `created`: 5 minutes.
pub const DEFAULT_MAX_SKEW_MS: i64 = 300_000;

/// The capability an anchor's endorsement names to declare its subject a trusted credential
/// issuer (the credential gate of the trust engine).
pub const CREDENTIAL_ISSUER_CAPABILITY: &str = "atp:credential-issuer";

/// The kind of a piece of evidence, as in the body's `type` member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EvidenceKind {
    /// The issuer vouches for the subject, optionally for one capability.
    Endorsement,
    /// The outcome of one interaction, signed by both parties.
    InteractionReceipt,
    /// A negative report by the issuer, with a severity.
    IncidentReport,
}

impl EvidenceKind {
    /// The wire name (`Endorsement`, `InteractionReceipt`, `IncidentReport`).
    pub fn as_str(&self) -> &'static str {
        match self {
            EvidenceKind::Endorsement => "Endorsement",
            EvidenceKind::InteractionReceipt => "InteractionReceipt",
            EvidenceKind::IncidentReport => "IncidentReport",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Endorsement, Self::InteractionReceipt, Self::IncidentReport]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// The outcome of an interaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The interaction succeeded (positive evidence).
    Success,
    /// The interaction failed (negative evidence).
    Failure,
}

/// The severity of an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Minor.
    Low,
    /// Significant.
    Medium,
    /// Serious: while open, it caps the subject's level at 1.
    High,
}

impl Severity {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The signed body of a piece of evidence. Optional members are omitted when absent; `null` is
/// never accepted.
///
/// | member | `Endorsement` | `InteractionReceipt` | `IncidentReport` |
/// |---|---|---|---|
/// | `capability` | optional | required | optional |
/// | `outcome` | absent | required | absent |
/// | `subjectKeySeq` | absent | required | absent |
/// | `severity` | absent | absent | required |
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EvidenceBody {
    /// The format version, always [`EVIDENCE_VERSION`].
    pub v: String,
    /// The kind.
    #[serde(rename = "type")]
    pub kind: EvidenceKind,
    /// Who makes the statement (and signs `sig`).
    pub issuer: String,
    /// The sequence number of the issuer's KEL event that established the signing key (0 for a
    /// `did:key`).
    pub issuer_key_seq: u64,
    /// Whom the statement is about.
    pub subject: String,
    /// For receipts: the subject's key sequence number (the subject signs `subjectSig`).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub subject_key_seq: Option<u64>,
    /// When the statement was made, RFC 3339 UTC (`2026-01-01T00:00:00Z`).
    pub created: String,
    /// The capability the statement is about (`[A-Za-z0-9._:/-]`, 1–128 bytes).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    /// For receipts: the outcome.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// For incident reports: the severity.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// Evidence with its signature(s): `{"body": …, "sig": …, "subjectSig": …}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SignedEvidence {
    /// The signed body.
    pub body: EvidenceBody,
    /// The issuer's composite signature over `JCS(body)`, ctx `atp/evidence/v1`, base64url
    /// without padding.
    pub sig: String,
    /// For receipts only: the subject's composite signature over the same bytes.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub subject_sig: Option<String>,
}

fn malformed(why: impl Into<String>) -> CoreError {
    CoreError::EvidenceMalformed(why.into())
}

fn check_did(what: &str, did: &str) -> Result<(), CoreError> {
    if did.len() > MAX_DID_BYTES {
        return Err(CoreError::EvidenceTooLarge {
            what: "did",
            limit: MAX_DID_BYTES,
            actual: did.len(),
        });
    }
    validate_did(did).map_err(|e| malformed(format!("{what}: {e}")))
}

fn check_capability(cap: &str) -> Result<(), CoreError> {
    if cap.len() > MAX_CAPABILITY_BYTES {
        return Err(CoreError::EvidenceTooLarge {
            what: "capability",
            limit: MAX_CAPABILITY_BYTES,
            actual: cap.len(),
        });
    }
    let ok = !cap.is_empty()
        && cap
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'));
    if !ok {
        return Err(malformed("capability must be 1-128 bytes of [A-Za-z0-9._:/-]"));
    }
    Ok(())
}

impl EvidenceBody {
    fn base(
        kind: EvidenceKind,
        issuer: &str,
        issuer_key_seq: u64,
        subject: &str,
        created: &str,
    ) -> Self {
        EvidenceBody {
            v: EVIDENCE_VERSION.into(),
            kind,
            issuer: issuer.into(),
            issuer_key_seq,
            subject: subject.into(),
            subject_key_seq: None,
            created: created.into(),
            capability: None,
            outcome: None,
            severity: None,
        }
    }

    /// An endorsement of `subject` by `issuer`, optionally for `capability`.
    pub fn endorsement(
        issuer: &str,
        issuer_key_seq: u64,
        subject: &str,
        created: &str,
        capability: Option<&str>,
    ) -> Self {
        EvidenceBody {
            capability: capability.map(str::to_owned),
            ..Self::base(EvidenceKind::Endorsement, issuer, issuer_key_seq, subject, created)
        }
    }

    /// A receipt of one interaction between `issuer` and `subject`; both must sign it.
    pub fn receipt(
        issuer: &str,
        issuer_key_seq: u64,
        subject: &str,
        subject_key_seq: u64,
        created: &str,
        capability: &str,
        outcome: Outcome,
    ) -> Self {
        EvidenceBody {
            subject_key_seq: Some(subject_key_seq),
            capability: Some(capability.to_owned()),
            outcome: Some(outcome),
            ..Self::base(EvidenceKind::InteractionReceipt, issuer, issuer_key_seq, subject, created)
        }
    }

    /// An incident report about `subject` by `issuer`.
    pub fn incident(
        issuer: &str,
        issuer_key_seq: u64,
        subject: &str,
        created: &str,
        severity: Severity,
        capability: Option<&str>,
    ) -> Self {
        EvidenceBody {
            severity: Some(severity),
            capability: capability.map(str::to_owned),
            ..Self::base(EvidenceKind::IncidentReport, issuer, issuer_key_seq, subject, created)
        }
    }

    /// Check the shape and limits of the body (not the signatures or the time), and return the
    /// creation time in Unix milliseconds. Self-evidence is refused with `EVIDENCE_SELF`.
    pub fn validate(&self) -> Result<i64, CoreError> {
        if self.v != EVIDENCE_VERSION {
            return Err(malformed(format!("v must be {EVIDENCE_VERSION:?}")));
        }
        check_did("issuer", &self.issuer)?;
        check_did("subject", &self.subject)?;
        if let Some(cap) = &self.capability {
            check_capability(cap)?;
        }
        let created = parse_timestamp(&self.created)
            .map_err(|_| malformed("created must be RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS[.fff]Z)"))?;
        match self.kind {
            EvidenceKind::Endorsement => {
                if self.outcome.is_some()
                    || self.severity.is_some()
                    || self.subject_key_seq.is_some()
                {
                    return Err(malformed(
                        "an Endorsement has no outcome, severity or subjectKeySeq",
                    ));
                }
            }
            EvidenceKind::InteractionReceipt => {
                if self.outcome.is_none()
                    || self.capability.is_none()
                    || self.subject_key_seq.is_none()
                {
                    return Err(malformed(
                        "an InteractionReceipt needs outcome, capability and subjectKeySeq",
                    ));
                }
                if self.severity.is_some() {
                    return Err(malformed("an InteractionReceipt has no severity"));
                }
            }
            EvidenceKind::IncidentReport => {
                if self.severity.is_none() {
                    return Err(malformed("an IncidentReport needs a severity"));
                }
                if self.outcome.is_some() || self.subject_key_seq.is_some() {
                    return Err(malformed("an IncidentReport has no outcome or subjectKeySeq"));
                }
            }
        }
        // An agent's statements about itself count for nothing, so they are refused outright
        // rather than stored and ignored.
        if self.issuer == self.subject {
            return Err(CoreError::EvidenceSelf(self.issuer.clone()));
        }
        Ok(created)
    }

    /// `JCS(body)`: the signed bytes.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, CoreError> {
        crate::jcs::canonicalize_serializable(self)
    }

    /// `SHA-256(JCS(body))`: the evidence's identity and its log entry's `data_hash`.
    pub fn content_hash(&self) -> Result<[u8; 32], CoreError> {
        Ok(atp_crypto::sha256(&self.canonical_bytes()?))
    }

    /// Sign as the issuer. A receipt then needs [`SignedEvidence::countersign`] by the subject.
    pub fn sign(self, issuer_key: &SigningKey) -> Result<SignedEvidence, CoreError> {
        self.validate()?;
        let sig = sign_body(&self, issuer_key)?;
        Ok(SignedEvidence { body: self, sig, subject_sig: None })
    }
}

fn sign_body(body: &EvidenceBody, key: &SigningKey) -> Result<String, CoreError> {
    if !CryptoProvider::quantum_safe().accepts(key.algorithm()) {
        return Err(CoreError::EvidenceAlgorithmNotAllowed(key.algorithm().name()));
    }
    let sig = key.sign(&body.canonical_bytes()?, SigningContext::Evidence.as_bytes())?;
    Ok(URL_SAFE_NO_PAD.encode(sig))
}

/// Evidence whose signatures verified, with the facts a trust engine needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEvidence {
    /// The body.
    pub body: EvidenceBody,
    /// `SHA-256(JCS(body))`.
    pub content_hash: [u8; 32],
    /// `created` in Unix milliseconds.
    pub created_ms: i64,
}

impl SignedEvidence {
    /// Add the subject's signature to a receipt.
    pub fn countersign(mut self, subject_key: &SigningKey) -> Result<Self, CoreError> {
        if self.body.kind != EvidenceKind::InteractionReceipt {
            return Err(malformed("only an InteractionReceipt is countersigned"));
        }
        self.subject_sig = Some(sign_body(&self.body, subject_key)?);
        Ok(self)
    }

    /// Parse strictly: at most [`MAX_EVIDENCE_BYTES`], no unknown or duplicate members, no
    /// `null`s. (Semantic checks happen in [`verify`].)
    pub fn from_json(json: &[u8]) -> Result<Self, CoreError> {
        if json.len() > MAX_EVIDENCE_BYTES {
            return Err(CoreError::EvidenceTooLarge {
                what: "evidence",
                limit: MAX_EVIDENCE_BYTES,
                actual: json.len(),
            });
        }
        serde_json::from_slice(json).map_err(|e| malformed(e.to_string()))
    }

    /// The canonical JSON text.
    pub fn to_json(&self) -> Result<String, CoreError> {
        String::from_utf8(crate::jcs::canonicalize_serializable(self)?)
            .map_err(|e| CoreError::Json(e.to_string()))
    }
}

/// What the verifier knows: the key of a signer and the current time.
pub struct EvidenceVerifyContext<'a> {
    /// `(did, key_seq)` to the key and its validity window (from the signer's verified KEL, as
    /// for envelopes); `None` when unknown.
    pub key_lookup: &'a dyn Fn(&str, u64) -> Option<KeyValidity>,
    /// The verifier's time, Unix milliseconds.
    pub now_ms: i64,
    /// How far in the future `created` may lie (milliseconds).
    pub max_skew_ms: i64,
}

fn check_signer(
    ctx: &EvidenceVerifyContext<'_>,
    role: &'static str,
    did: &str,
    seq: u64,
    created: i64,
    signed: &[u8],
    sig: &str,
) -> Result<(), CoreError> {
    let validity = (ctx.key_lookup)(did, seq)
        .ok_or_else(|| CoreError::EvidenceUnknownSigner { did: did.to_owned(), seq })?;
    if !CryptoProvider::quantum_safe().accepts(validity.key.algorithm()) {
        return Err(CoreError::EvidenceAlgorithmNotAllowed(validity.key.algorithm().name()));
    }
    let in_window =
        validity.valid_from <= created && validity.valid_until.is_none_or(|u| created < u);
    if !in_window {
        return Err(CoreError::EvidenceKeyNotValidAtCreation { role, created_ms: created });
    }
    if sig.len() > MAX_SIGNATURE_CHARS {
        return Err(CoreError::EvidenceTooLarge {
            what: "signature",
            limit: MAX_SIGNATURE_CHARS,
            actual: sig.len(),
        });
    }
    let raw = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| CoreError::EvidenceBadSignature { role, reason: "not base64url".into() })?;
    validity
        .key
        .verify(signed, SigningContext::Evidence.as_bytes(), &raw)
        .map_err(|e| CoreError::EvidenceBadSignature { role, reason: e.to_string() })
}

/// Verify signed evidence (see the module documentation for the order of the checks).
pub fn verify(
    evidence: &SignedEvidence,
    ctx: &EvidenceVerifyContext<'_>,
) -> Result<VerifiedEvidence, CoreError> {
    let body = &evidence.body;
    let created_ms = body.validate()?;
    let receipt = body.kind == EvidenceKind::InteractionReceipt;
    if receipt != evidence.subject_sig.is_some() {
        return Err(if receipt {
            CoreError::EvidenceBadSignature {
                role: "subject",
                reason: "an InteractionReceipt must be countersigned by its subject".into(),
            }
        } else {
            malformed("only an InteractionReceipt carries subjectSig")
        });
    }
    if created_ms > ctx.now_ms.saturating_add(ctx.max_skew_ms) {
        return Err(CoreError::EvidenceNotYetValid { created_ms, now_ms: ctx.now_ms });
    }
    let signed = body.canonical_bytes()?;
    check_signer(
        ctx,
        "issuer",
        &body.issuer,
        body.issuer_key_seq,
        created_ms,
        &signed,
        &evidence.sig,
    )?;
    if let (Some(seq), Some(sig)) = (body.subject_key_seq, &evidence.subject_sig) {
        check_signer(ctx, "subject", &body.subject, seq, created_ms, &signed, sig)?;
    }
    Ok(VerifiedEvidence {
        body: body.clone(),
        content_hash: atp_crypto::sha256(&signed),
        created_ms,
    })
}

/// Parse and verify in one step.
pub fn verify_json(
    json: &[u8],
    ctx: &EvidenceVerifyContext<'_>,
) -> Result<VerifiedEvidence, CoreError> {
    verify(&SignedEvidence::from_json(json)?, ctx)
}
