//! Signed trust proofs (docs/design.md §7, docs/protocol.md Part G).
//!
//! A node answers "how far can this agent be trusted?" with a short-lived W3C Verifiable
//! Credential, signed with the node's quantum-safe proof set (`mldsa65-jcs-2024` +
//! `eddsa-jcs-2022`, Part C §C3), so any W3C verifier and the ATP SDK can check it offline:
//!
//! ```json
//! {
//!   "@context": ["https://www.w3.org/ns/credentials/v2"],
//!   "type": ["VerifiableCredential", "AtpTrustProof"],
//!   "issuer": "did:atp:<node>",
//!   "validFrom": "2026-11-26T05:00:00Z",
//!   "validUntil": "2026-11-26T05:05:00Z",
//!   "credentialSubject": {
//!     "id": "did:atp:<subject>",
//!     "trustScore": 0.731234,
//!     "trustLevel": 3,
//!     "trustLevelName": "TRUSTED",
//!     "evidenceCount": 57,
//!     "computedAt": "2026-11-26T04:59:30.123Z"
//!   },
//!   "proof": [ … ]
//! }
//! ```
//!
//! [`verify_trust_proof`] checks, in order: the issuer is the node the relying party trusts
//! (`TRUST_PROOF_ISSUER_MISMATCH`), the VC 2.0 rules, both proofs under the quantum-safe policy
//! (`CRYPTOGRAPHIC_SECURITY_ERROR`: any edit breaks them), the validity period at the caller's
//! clock (`RANGE_ERROR`, so a proof fails after `validUntil`), and last the claims' shape
//! (`TRUST_PROOF_INVALID`: the type, a lifetime of at most [`MAX_TRUST_PROOF_TTL_SECS`], score in
//! [0, 1], a level 0–4 that matches its name).

use atp_crypto::{PublicKey, SigningKey};
use serde_json::{Map, Value, json};

use crate::CoreError;
use crate::data_integrity::{self, ProofSetOptions, VerifyOptions};
use crate::did::validate_did;
use crate::vc::{self, DateTimeStamp};

/// The credential type of a trust proof.
pub const TRUST_PROOF_TYPE: &str = "AtpTrustProof";

/// The longest lifetime (`validUntil - validFrom`) a verifier accepts: one day. Nodes issue far
/// shorter ones (five minutes by default); a longer-lived proof would outlive the evidence
/// behind it.
pub const MAX_TRUST_PROOF_TTL_SECS: i64 = 86_400;

/// The names of the levels 0 to 4.
pub const LEVEL_NAMES: [&str; 5] = ["UNKNOWN", "BASIC", "VERIFIED", "TRUSTED", "PRIVILEGED"];

/// The name of `level`, or `None` above 4.
pub fn level_name(level: u8) -> Option<&'static str> {
    LEVEL_NAMES.get(usize::from(level)).copied()
}

/// What a trust proof states about its subject.
#[derive(Clone, Debug, PartialEq)]
pub struct TrustClaims {
    /// The subject's DID.
    pub subject: String,
    /// The normalised score in [0, 1] (published rounded to six decimals).
    pub score: f64,
    /// The level, 0 (UNKNOWN) to 4 (PRIVILEGED), after the hard gates.
    pub level: u8,
    /// How many pieces of live evidence about the subject the computation used.
    pub evidence_count: u64,
    /// When the snapshot behind the proof was computed, Unix milliseconds.
    pub computed_at_ms: i64,
}

fn invalid(why: impl Into<String>) -> CoreError {
    CoreError::TrustProofInvalid(why.into())
}

/// The score as a trust proof publishes it: rounded to six decimals, so that its JSON text (and
/// with it the signed JCS bytes) is short and identical on every platform. Nodes report this
/// value beside the proof, so the number a client reads equals the number that is signed.
pub fn published_score(score: f64) -> f64 {
    (score * 1e6).round() / 1e6
}

fn millis_to_string(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let base = DateTimeStamp::from_unix(secs).to_string();
    match base.strip_suffix('Z') {
        Some(stem) if frac != 0 => format!("{stem}.{frac:03}Z"),
        _ => base,
    }
}

impl TrustClaims {
    fn check(&self) -> Result<(), CoreError> {
        validate_did(&self.subject).map_err(|e| invalid(format!("subject: {e}")))?;
        if !(0.0..=1.0).contains(&self.score) {
            return Err(invalid("trustScore must be in [0, 1]"));
        }
        if level_name(self.level).is_none() {
            return Err(invalid("trustLevel must be 0 to 4"));
        }
        if self.evidence_count > (1 << 53) {
            return Err(invalid("evidenceCount is too large"));
        }
        Ok(())
    }
}

/// The unsigned trust-proof credential: `issuer` states `claims`, valid for `ttl_secs` from
/// `valid_from` (Unix seconds).
pub fn build_trust_proof(
    issuer: &str,
    claims: &TrustClaims,
    valid_from: i64,
    ttl_secs: i64,
) -> Result<Value, CoreError> {
    claims.check()?;
    if !(1..=MAX_TRUST_PROOF_TTL_SECS).contains(&ttl_secs) {
        return Err(invalid(format!("the lifetime must be 1 to {MAX_TRUST_PROOF_TTL_SECS} s")));
    }
    let level = claims.level;
    Ok(json!({
        "@context": [vc::VC_V2_CONTEXT],
        "type": [vc::VERIFIABLE_CREDENTIAL, TRUST_PROOF_TYPE],
        "issuer": issuer,
        "validFrom": DateTimeStamp::from_unix(valid_from).to_string(),
        "validUntil": DateTimeStamp::from_unix(valid_from.saturating_add(ttl_secs)).to_string(),
        "credentialSubject": {
            "id": claims.subject,
            "trustScore": published_score(claims.score),
            "trustLevel": level,
            "trustLevelName": level_name(level),
            "evidenceCount": claims.evidence_count,
            "computedAt": millis_to_string(claims.computed_at_ms),
        },
    }))
}

/// Build and sign a trust proof with the issuer's composite key (verification methods
/// `<issuer>#mldsa65` or `#mldsa44`, and `<issuer>#ed25519`).
pub fn issue_trust_proof(
    issuer: &str,
    issuer_key: &SigningKey,
    claims: &TrustClaims,
    now_secs: i64,
    ttl_secs: i64,
) -> Result<Value, CoreError> {
    let doc = build_trust_proof(issuer, claims, now_secs, ttl_secs)?;
    let (mldsa, _) = issuer_key
        .components()
        .ok_or_else(|| CoreError::ProofGeneration("a trust proof needs a composite key".into()))?;
    let fragment = mldsa_fragment(mldsa.algorithm());
    let options = ProofSetOptions::assertion(
        format!("{issuer}#{fragment}"),
        format!("{issuer}#ed25519"),
        DateTimeStamp::from_unix(now_secs).to_string(),
    );
    data_integrity::sign_quantum_safe_proof_set(&doc, issuer_key, &options)
}

fn mldsa_fragment(algorithm: atp_crypto::AlgorithmId) -> &'static str {
    if algorithm == atp_crypto::AlgorithmId::MlDsa44 { "mldsa44" } else { "mldsa65" }
}

/// A trust proof that verified.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedTrustProof {
    /// The claims.
    pub claims: TrustClaims,
    /// The issuing node's DID.
    pub issuer: String,
    /// `validFrom`, Unix seconds.
    pub valid_from: i64,
    /// `validUntil`, Unix seconds.
    pub valid_until: i64,
}

/// Verify a trust proof offline against the composite public key of the node the relying party
/// trusts (`issuer`), at `now_secs` (Unix seconds). See the module documentation for the checks.
pub fn verify_trust_proof(
    proof: &Value,
    issuer: &str,
    issuer_key: &PublicKey,
    now_secs: i64,
) -> Result<VerifiedTrustProof, CoreError> {
    let (mldsa, ed25519) = issuer_key
        .components()
        .ok_or_else(|| invalid("the issuer key must be a composite ML-DSA + Ed25519 key"))?;
    let mldsa_vm = format!("{issuer}#{}", mldsa_fragment(mldsa.algorithm()));
    let ed_vm = format!("{issuer}#ed25519");
    let resolver = |vm: &str| {
        if vm == mldsa_vm {
            Ok(mldsa.clone())
        } else if vm == ed_vm {
            Ok(ed25519.clone())
        } else {
            Err(CoreError::VcCryptographicSecurity {
                kind: data_integrity::ProofErrorKind::VerificationMethod,
                reason: format!("{vm} is not a key of {issuer}"),
                proof_index: None,
            })
        }
    };
    verify_trust_proof_with(proof, issuer, &resolver, now_secs)
}

/// [`verify_trust_proof`] with a caller-supplied verification-method resolver (for example one
/// backed by the issuer's resolved DID document).
pub fn verify_trust_proof_with(
    proof: &Value,
    issuer: &str,
    resolver: &data_integrity::Resolver<'_>,
    now_secs: i64,
) -> Result<VerifiedTrustProof, CoreError> {
    let info = vc::check_credential(proof)?;
    if info.issuer != issuer {
        return Err(CoreError::TrustProofIssuerMismatch {
            expected: issuer.to_owned(),
            found: info.issuer,
        });
    }
    let verified =
        data_integrity::verify_credential(proof, now_secs, &VerifyOptions::assertion(), resolver)?;
    let info = verified.credential;
    if !info.types.iter().any(|t| t == TRUST_PROOF_TYPE) {
        return Err(invalid(format!("type must include {TRUST_PROOF_TYPE:?}")));
    }
    let (Some(from), Some(until)) = (info.valid_from, info.valid_until) else {
        return Err(invalid("validFrom and validUntil are required"));
    };
    let (valid_from, valid_until) = (from.unix_seconds(), until.unix_seconds());
    if valid_until - valid_from > MAX_TRUST_PROOF_TTL_SECS {
        return Err(invalid(format!("lives longer than {MAX_TRUST_PROOF_TTL_SECS} s")));
    }
    let subject = proof
        .get("credentialSubject")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("credentialSubject must be one object"))?;
    let claims = parse_claims(subject)?;
    Ok(VerifiedTrustProof { claims, issuer: info.issuer, valid_from, valid_until })
}

fn parse_claims(subject: &Map<String, Value>) -> Result<TrustClaims, CoreError> {
    const MEMBERS: [&str; 6] =
        ["id", "trustScore", "trustLevel", "trustLevelName", "evidenceCount", "computedAt"];
    if let Some(extra) = subject.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        return Err(invalid(format!("unexpected credentialSubject member {extra:?}")));
    }
    let str_of = |k: &str| {
        subject
            .get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{k} must be a string")))
    };
    let score = subject
        .get("trustScore")
        .and_then(Value::as_f64)
        .ok_or_else(|| invalid("trustScore must be a number"))?;
    let level = subject
        .get("trustLevel")
        .and_then(Value::as_u64)
        .and_then(|l| u8::try_from(l).ok())
        .ok_or_else(|| invalid("trustLevel must be an integer 0 to 4"))?;
    if level_name(level) != Some(str_of("trustLevelName")?) {
        return Err(invalid("trustLevelName does not match trustLevel"));
    }
    let evidence_count = subject
        .get("evidenceCount")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("evidenceCount must be a non-negative integer"))?;
    let computed_at_ms = DateTimeStamp::parse(str_of("computedAt")?)
        .map_err(|why| invalid(format!("computedAt: {why}")))?
        .unix_millis();
    let claims = TrustClaims {
        subject: str_of("id")?.to_owned(),
        score,
        level,
        evidence_count,
        computed_at_ms,
    };
    claims.check()?;
    Ok(claims)
}
