//! W3C VC Data Integrity 1.0 proofs with the JCS cryptosuites, and quantum-safe proof sets.
//!
//! # Cryptosuites
//!
//! All three suites share one construction (vc-di-eddsa §3.3, di-quantum-safe §3):
//!
//! ```text
//! proofConfig  = the proof without proofValue, with "@context" set to the document's
//! hashData     = H(JCS(proofConfig)) || H(JCS(document without proof))
//! proofValue   = multibase(Sign(hashData))
//! ```
//!
//! | suite              | key        | H       | signature                     | proofValue          |
//! |--------------------|------------|---------|-------------------------------|---------------------|
//! | `eddsa-jcs-2022`   | Ed25519    | SHA-256 | Ed25519 (64 bytes)            | `z` base58btc       |
//! | `mldsa44-jcs-2024` | ML-DSA-44  | SHA-256 | pure ML-DSA, empty context    | `u` base64url       |
//! | `mldsa65-jcs-2024` | ML-DSA-65  | SHA-384 | pure ML-DSA, empty context    | `u` base64url       |
//!
//! `eddsa-jcs-2022` reproduces the W3C test vectors byte for byte, and `mldsa44-jcs-2024`
//! verifies the di-quantum-safe vectors. `mldsa65-jcs-2024` follows the same construction with
//! SHA-384, as the draft describes for the category-3 parameter set.
//!
//! # Proof sets and the quantum-safe policy
//!
//! A document may carry several proofs (`"proof": [...]`). Each is computed over the document
//! *without any proof* (a proof set, not a chain; `previousProof` chains are refused). An ATP
//! issuer with a composite ML-DSA-65 + Ed25519 key signs with
//! [`sign_quantum_safe_proof_set`]: one `mldsa65-jcs-2024` proof with the ML-DSA component and
//! one `eddsa-jcs-2022` proof with the Ed25519 component.
//!
//! [`ProofPolicy::QuantumSafe`], the default, accepts a document only when **every** proof on it
//! verifies and there is a valid ML-DSA proof **and** a valid Ed25519 proof whose verification
//! methods have the same controller (the DID before `#`). [`ProofPolicy::Any`] accepts one valid
//! proof of any of the suites (for W3C interoperability), still rejecting any invalid proof.
//!
//! Reusing the composite key's components here is sound because every input is
//! domain-separated: the composite's ML-DSA component signs `M'` with `ctx = Label` while these
//! suites sign with an empty `ctx` (FIPS 204 prefixes the context and its length, so the two
//! internal messages differ in their second byte), and the composite's Ed25519 component signs
//! `M'`, which begins with `CompositeAlgorithmSignatures2025` and is at least 127 bytes long,
//! while `eddsa-jcs-2022` signs exactly 64 bytes. See `docs/protocol.md`.
//!
//! # Presentations, challenges and replay
//!
//! For proof purpose `authentication` the verifier must supply the `challenge` and `domain` it
//! expects ([`VerifyOptions::authentication`]); a missing or different value fails with
//! [`ProofErrorKind::InvalidChallenge`] / [`ProofErrorKind::InvalidDomain`]. This crate keeps no
//! state: the verified challenge is returned in [`VerifiedProof::challenge`], and the caller
//! must consume it in its own replay cache (a challenge is single-use) before accepting the
//! presentation.
//!
//! # Verification methods
//!
//! Keys are found by a caller-supplied resolver, `&dyn Fn(&str) -> Result<PublicKey, CoreError>`,
//! given the `verificationMethod` URL. It must return only a key that the controller's DID
//! document lists under the relationship the proof purpose requires (`assertionMethod` or
//! `authentication`). [`resolve_did_key`] resolves `did:key` Multikeys (Ed25519 `z6Mk…` and
//! ML-DSA `u…`) without any lookup.
//!
//! # Limits
//!
//! Documents are at most [`MAX_DOCUMENT_BYTES`] serialised and [`MAX_DOCUMENT_DEPTH`] deep, and
//! carry at most [`MAX_PROOFS`] proofs.
use std::fmt;

use atp_crypto::{AlgorithmId, PublicKey, SigningKey};
use serde_json::{Map, Value};
use sha2::Digest;

use crate::CoreError;
use crate::jcs;
use crate::vc::{self, CredentialInfo, DateTimeStamp, PresentationInfo};

/// The largest document (serialised JSON, proofs included) that is signed or verified.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// The deepest nesting of arrays and objects in a document that is signed or verified.
pub const MAX_DOCUMENT_DEPTH: usize = 64;
/// The most proofs a document may carry.
pub const MAX_PROOFS: usize = 8;
/// The proof `type` of every Data Integrity proof here.
pub const DATA_INTEGRITY_PROOF: &str = "DataIntegrityProof";
/// The proof purpose for credentials.
pub const ASSERTION_METHOD: &str = "assertionMethod";
/// The proof purpose for presentations (which also bind a challenge and a domain).
pub const AUTHENTICATION: &str = "authentication";

/// A verification-method resolver: `verificationMethod` URL to public key.
pub type Resolver<'a> = dyn Fn(&str) -> Result<PublicKey, CoreError> + 'a;

// ------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------

// `ProofErrorKind` lives in `error.rs` beside the `CoreError` variant that carries it, so that the
// error module imports no protocol module; it is re-exported here, where its users look for it.
pub use crate::error::ProofErrorKind;

fn security(kind: ProofErrorKind, reason: impl Into<String>) -> CoreError {
    CoreError::VcCryptographicSecurity { kind, reason: reason.into(), proof_index: None }
}

fn generation(reason: impl Into<String>) -> CoreError {
    CoreError::ProofGeneration(reason.into())
}

// ------------------------------------------------------------------------------------------
// Cryptosuites
// ------------------------------------------------------------------------------------------

/// A JCS Data Integrity cryptosuite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cryptosuite {
    /// `eddsa-jcs-2022` (vc-di-eddsa §3.3): Ed25519 over SHA-256 hashes.
    EddsaJcs2022,
    /// `mldsa44-jcs-2024` (di-quantum-safe): ML-DSA-44 over SHA-256 hashes.
    MlDsa44Jcs2024,
    /// `mldsa65-jcs-2024`: ML-DSA-65 over SHA-384 hashes.
    MlDsa65Jcs2024,
}

impl Cryptosuite {
    /// Every suite.
    pub const ALL: [Cryptosuite; 3] =
        [Cryptosuite::EddsaJcs2022, Cryptosuite::MlDsa44Jcs2024, Cryptosuite::MlDsa65Jcs2024];

    /// The `cryptosuite` string.
    pub fn name(&self) -> &'static str {
        match self {
            Cryptosuite::EddsaJcs2022 => "eddsa-jcs-2022",
            Cryptosuite::MlDsa44Jcs2024 => "mldsa44-jcs-2024",
            Cryptosuite::MlDsa65Jcs2024 => "mldsa65-jcs-2024",
        }
    }

    /// The suite named `name`, if implemented.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The signature algorithm (and so the key type) of the suite.
    pub fn algorithm(&self) -> AlgorithmId {
        match self {
            Cryptosuite::EddsaJcs2022 => AlgorithmId::Ed25519,
            Cryptosuite::MlDsa44Jcs2024 => AlgorithmId::MlDsa44,
            Cryptosuite::MlDsa65Jcs2024 => AlgorithmId::MlDsa65,
        }
    }

    /// The suite for keys of `algorithm`, if any.
    pub fn for_algorithm(algorithm: AlgorithmId) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.algorithm() == algorithm)
    }

    /// Whether this is a post-quantum (ML-DSA) suite.
    pub fn is_ml_dsa(&self) -> bool {
        !matches!(self, Cryptosuite::EddsaJcs2022)
    }

    /// The suite's hash function.
    pub fn hash(&self, data: &[u8]) -> Vec<u8> {
        match self {
            Cryptosuite::EddsaJcs2022 | Cryptosuite::MlDsa44Jcs2024 => {
                sha2::Sha256::digest(data).as_slice().to_vec()
            }
            Cryptosuite::MlDsa65Jcs2024 => sha2::Sha384::digest(data).as_slice().to_vec(),
        }
    }

    fn multibase(&self) -> multibase::Base {
        match self {
            Cryptosuite::EddsaJcs2022 => multibase::Base::Base58Btc,
            _ => multibase::Base::Base64Url,
        }
    }

    /// Encode a signature as this suite's `proofValue`.
    pub fn encode_proof_value(&self, signature: &[u8]) -> String {
        multibase::encode(self.multibase(), signature)
    }

    /// Decode this suite's `proofValue` (canonical encoding and exact signature length only).
    pub fn decode_proof_value(&self, proof_value: &str) -> Result<Vec<u8>, CoreError> {
        let bad = |why: String| security(ProofErrorKind::MalformedProof, why);
        let sig_len = self.algorithm().signature_len();
        if proof_value.len() > 2 * sig_len + 8 {
            return Err(bad("proofValue is too long".into()));
        }
        let (base, bytes) = multibase::decode(proof_value)
            .map_err(|e| bad(format!("proofValue is not multibase: {e}")))?;
        if base != self.multibase() {
            return Err(bad(format!(
                "{} proofValue must use multibase {:?}",
                self.name(),
                self.multibase()
            )));
        }
        if bytes.len() != sig_len {
            return Err(bad(format!(
                "{} signature must be {sig_len} bytes, got {}",
                self.name(),
                bytes.len()
            )));
        }
        if self.encode_proof_value(&bytes) != proof_value {
            return Err(bad("proofValue is not canonically encoded".into()));
        }
        Ok(bytes)
    }
}

impl fmt::Display for Cryptosuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ------------------------------------------------------------------------------------------
// The construction
// ------------------------------------------------------------------------------------------

/// Every intermediate value of one proof computation (for tests, debugging and vectors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofInputs {
    /// JCS of the document without its proof (the transformed document).
    pub canonical_document: Vec<u8>,
    /// JCS of the proof configuration.
    pub canonical_proof_config: Vec<u8>,
    /// H(canonical proof configuration).
    pub proof_config_hash: Vec<u8>,
    /// H(canonical document).
    pub document_hash: Vec<u8>,
    /// `proof_config_hash || document_hash`: the message that is signed.
    pub hash_data: Vec<u8>,
}

/// The proof configuration: `proof` (options or a full proof) without `proofValue`, with
/// `@context` set to the unsecured document's (or removed when the document has none).
pub fn proof_configuration(unsecured_document: &Value, proof: &Value) -> Result<Value, CoreError> {
    let mut config = proof
        .as_object()
        .cloned()
        .ok_or_else(|| security(ProofErrorKind::MalformedProof, "a proof must be a JSON object"))?;
    config.shift_remove("proofValue");
    match unsecured_document.get("@context") {
        Some(ctx) => {
            config.insert("@context".into(), ctx.clone());
        }
        None => {
            config.shift_remove("@context");
        }
    }
    Ok(Value::Object(config))
}

/// Transform and hash: every intermediate value for `suite` over the unsecured document (which
/// must have no `proof`) and a proof configuration from [`proof_configuration`].
pub fn proof_inputs(
    suite: Cryptosuite,
    unsecured_document: &Value,
    proof_config: &Value,
) -> Result<ProofInputs, CoreError> {
    let canonical_document = jcs::canonicalize(unsecured_document)?;
    let canonical_proof_config = jcs::canonicalize(proof_config)?;
    let proof_config_hash = suite.hash(&canonical_proof_config);
    let document_hash = suite.hash(&canonical_document);
    let mut hash_data = proof_config_hash.clone();
    hash_data.extend_from_slice(&document_hash);
    Ok(ProofInputs {
        canonical_document,
        canonical_proof_config,
        proof_config_hash,
        document_hash,
        hash_data,
    })
}

/// Size and depth limits, and numbers that JCS can represent exactly; `PARSING_ERROR` when
/// broken.
fn check_limits(doc: &Value) -> Result<&Map<String, Value>, CoreError> {
    let obj = doc
        .as_object()
        .ok_or_else(|| CoreError::VcParsing("a secured document must be a JSON object".into()))?;
    if jcs::depth(doc) > MAX_DOCUMENT_DEPTH {
        return Err(CoreError::VcParsing(format!(
            "the document nests deeper than {MAX_DOCUMENT_DEPTH} levels"
        )));
    }
    jcs::check_value(doc).map_err(|e| CoreError::VcParsing(format!("not I-JSON: {e}")))?;
    let size = serde_json::to_vec(doc)?.len();
    if size > MAX_DOCUMENT_BYTES {
        return Err(CoreError::VcParsing(format!(
            "the document is {size} bytes, more than the limit of {MAX_DOCUMENT_BYTES}"
        )));
    }
    Ok(obj)
}

/// The document without `proof`, and its proofs (zero or more).
fn split_proofs(obj: &Map<String, Value>) -> Result<(Value, Vec<Value>), CoreError> {
    let mut unsecured = obj.clone();
    let proofs = match unsecured.shift_remove("proof") {
        None => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(single) => vec![single],
    };
    Ok((Value::Object(unsecured), proofs))
}

/// The controller of a verification method: the URL before `#` (the whole URL without one,
/// as in `did:key:u…`).
pub fn controller_of(verification_method: &str) -> &str {
    verification_method.split('#').next().unwrap_or(verification_method)
}

/// Resolve a `did:key` verification method (`did:key:<multikey>` or
/// `did:key:<multikey>#<multikey>`) to its Ed25519 or ML-DSA public key.
pub fn resolve_did_key(verification_method: &str) -> Result<PublicKey, CoreError> {
    crate::did_key::parse_did_key(verification_method)
        .map_err(|e| security(ProofErrorKind::VerificationMethod, e.to_string()))
}

// ------------------------------------------------------------------------------------------
// Signing
// ------------------------------------------------------------------------------------------

/// The options of a new proof (everything but `proofValue`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofOptions {
    /// The cryptosuite; it must match the signing key's algorithm.
    pub cryptosuite: Cryptosuite,
    /// The verification method URL (such as `did:atp:…#ed25519`).
    pub verification_method: String,
    /// `assertionMethod` for credentials, `authentication` for presentations.
    pub proof_purpose: String,
    /// `created`, an XML Schema `dateTimeStamp` (this crate has no clock).
    pub created: Option<String>,
    /// `expires`, an XML Schema `dateTimeStamp`.
    pub expires: Option<String>,
    /// The verifier's challenge (presentations).
    pub challenge: Option<String>,
    /// The verifier's domain (presentations).
    pub domain: Option<String>,
    /// An optional proof `id` (a URL).
    pub id: Option<String>,
    /// An optional `nonce`.
    pub nonce: Option<String>,
}

impl ProofOptions {
    /// Options for an `assertionMethod` proof, as an issuer makes on a credential.
    pub fn assertion(cryptosuite: Cryptosuite, verification_method: impl Into<String>) -> Self {
        ProofOptions {
            cryptosuite,
            verification_method: verification_method.into(),
            proof_purpose: ASSERTION_METHOD.into(),
            created: None,
            expires: None,
            challenge: None,
            domain: None,
            id: None,
            nonce: None,
        }
    }

    /// Options for an `authentication` proof binding `challenge` and `domain`, as a holder
    /// makes on a presentation.
    pub fn authentication(
        cryptosuite: Cryptosuite,
        verification_method: impl Into<String>,
        challenge: impl Into<String>,
        domain: impl Into<String>,
    ) -> Self {
        ProofOptions {
            proof_purpose: AUTHENTICATION.into(),
            challenge: Some(challenge.into()),
            domain: Some(domain.into()),
            ..Self::assertion(cryptosuite, verification_method)
        }
    }

    /// Set `created`.
    pub fn created(mut self, created: impl Into<String>) -> Self {
        self.created = Some(created.into());
        self
    }

    /// Set `expires`.
    pub fn expires(mut self, expires: impl Into<String>) -> Self {
        self.expires = Some(expires.into());
        self
    }

    /// The proof object without `proofValue` (the order matches the W3C examples).
    fn to_proof(&self, document_context: Option<&Value>) -> Result<Map<String, Value>, CoreError> {
        if !vc::is_url(&self.verification_method) {
            return Err(generation("verificationMethod must be a URL"));
        }
        if self.proof_purpose.is_empty() {
            return Err(generation("proofPurpose must not be empty"));
        }
        for (name, v) in [("created", &self.created), ("expires", &self.expires)] {
            if let Some(s) = v {
                DateTimeStamp::parse(s).map_err(|why| {
                    generation(format!("{name} {s:?} is not a dateTimeStamp: {why}"))
                })?;
            }
        }
        if self.id.as_deref().is_some_and(|id| !vc::is_url(id)) {
            return Err(generation("a proof id must be a URL"));
        }
        if self.proof_purpose == AUTHENTICATION
            && (self.challenge.is_none() || self.domain.is_none())
        {
            return Err(generation("an authentication proof must bind a challenge and a domain"));
        }
        let mut p = Map::new();
        if let Some(id) = &self.id {
            p.insert("id".into(), Value::String(id.clone()));
        }
        p.insert("type".into(), Value::String(DATA_INTEGRITY_PROOF.into()));
        p.insert("cryptosuite".into(), Value::String(self.cryptosuite.name().into()));
        if let Some(c) = &self.created {
            p.insert("created".into(), Value::String(c.clone()));
        }
        if let Some(e) = &self.expires {
            p.insert("expires".into(), Value::String(e.clone()));
        }
        p.insert("verificationMethod".into(), Value::String(self.verification_method.clone()));
        p.insert("proofPurpose".into(), Value::String(self.proof_purpose.clone()));
        for (name, v) in
            [("challenge", &self.challenge), ("domain", &self.domain), ("nonce", &self.nonce)]
        {
            if let Some(s) = v {
                p.insert(name.into(), Value::String(s.clone()));
            }
        }
        if let Some(ctx) = document_context {
            p.insert("@context".into(), ctx.clone());
        }
        Ok(p)
    }
}

/// Create one proof (the proof object, with `proofValue`) over `unsecured_document`, which
/// must not have a `proof` property.
pub fn create_proof(
    unsecured_document: &Value,
    options: &ProofOptions,
    key: &SigningKey,
) -> Result<Value, CoreError> {
    let obj = check_limits(unsecured_document)?;
    if obj.contains_key("proof") {
        return Err(generation("create_proof takes a document without proof; use sign_proof"));
    }
    if key.algorithm() != options.cryptosuite.algorithm() {
        return Err(generation(format!(
            "{} needs a {} key, got {}",
            options.cryptosuite,
            options.cryptosuite.algorithm(),
            key.algorithm()
        )));
    }
    let proof = Value::Object(options.to_proof(obj.get("@context"))?);
    let config = proof_configuration(unsecured_document, &proof)?;
    let inputs = proof_inputs(options.cryptosuite, unsecured_document, &config)?;
    // Ed25519 has no context input; ML-DSA signs in pure mode with the empty context, as the
    // W3C suites specify. (ATP's composite signatures use ctx = Label, so the two never meet.)
    let signature = key.sign(&inputs.hash_data, b"")?;
    let mut proof = match proof {
        Value::Object(m) => m,
        _ => return Err(generation("internal: proof is not an object")),
    };
    proof.insert(
        "proofValue".into(),
        Value::String(options.cryptosuite.encode_proof_value(&signature)),
    );
    Ok(Value::Object(proof))
}

/// Attach `proof` to `doc`: as `proof` when there is none, otherwise as one more member of the
/// proof set (an array).
pub fn add_proof(doc: &Value, proof: Value) -> Result<Value, CoreError> {
    let obj =
        doc.as_object().ok_or_else(|| generation("a secured document must be a JSON object"))?;
    let mut out = obj.clone();
    let new = match out.shift_remove("proof") {
        None => proof,
        Some(Value::Array(mut items)) => {
            items.push(proof);
            Value::Array(items)
        }
        Some(existing) => Value::Array(vec![existing, proof]),
    };
    if new.as_array().is_some_and(|a| a.len() > MAX_PROOFS) {
        return Err(generation(format!("a document carries at most {MAX_PROOFS} proofs")));
    }
    out.insert("proof".into(), new);
    Ok(Value::Object(out))
}

/// Sign `doc` with one more proof. The proof covers the document without any existing proof
/// (proof-set semantics), and is added beside them.
pub fn sign_proof(
    doc: &Value,
    options: &ProofOptions,
    key: &SigningKey,
) -> Result<Value, CoreError> {
    let obj = check_limits(doc)?;
    let (unsecured, _) = split_proofs(obj)?;
    let proof = create_proof(&unsecured, options, key)?;
    add_proof(doc, proof)
}

/// Options of a quantum-safe proof set ([`sign_quantum_safe_proof_set`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofSetOptions {
    /// The verification method of the ML-DSA component key (such as `did:atp:…#mldsa65`).
    pub mldsa_verification_method: String,
    /// The verification method of the Ed25519 component key (such as `did:atp:…#ed25519`).
    pub ed25519_verification_method: String,
    /// `assertionMethod` or `authentication`.
    pub proof_purpose: String,
    /// `created` of both proofs.
    pub created: Option<String>,
    /// `expires` of both proofs.
    pub expires: Option<String>,
    /// The verifier's challenge (presentations).
    pub challenge: Option<String>,
    /// The verifier's domain (presentations).
    pub domain: Option<String>,
}

impl ProofSetOptions {
    /// Options for an issuer's `assertionMethod` proof set.
    pub fn assertion(
        mldsa_verification_method: impl Into<String>,
        ed25519_verification_method: impl Into<String>,
        created: impl Into<String>,
    ) -> Self {
        ProofSetOptions {
            mldsa_verification_method: mldsa_verification_method.into(),
            ed25519_verification_method: ed25519_verification_method.into(),
            proof_purpose: ASSERTION_METHOD.into(),
            created: Some(created.into()),
            expires: None,
            challenge: None,
            domain: None,
        }
    }

    /// Options for a holder's `authentication` proof set on a presentation.
    pub fn authentication(
        mldsa_verification_method: impl Into<String>,
        ed25519_verification_method: impl Into<String>,
        created: impl Into<String>,
        challenge: impl Into<String>,
        domain: impl Into<String>,
    ) -> Self {
        ProofSetOptions {
            proof_purpose: AUTHENTICATION.into(),
            challenge: Some(challenge.into()),
            domain: Some(domain.into()),
            ..Self::assertion(mldsa_verification_method, ed25519_verification_method, created)
        }
    }
}

/// Sign `doc` with a composite ML-DSA + Ed25519 key as a proof set: one `mldsa65-jcs-2024`
/// (or `mldsa44-jcs-2024` for an ML-DSA-44 composite) proof with the ML-DSA component and one
/// `eddsa-jcs-2022` proof with the Ed25519 component, each over the document without any proof.
///
/// Both verification methods must have the same controller.
pub fn sign_quantum_safe_proof_set(
    doc: &Value,
    composite_key: &SigningKey,
    options: &ProofSetOptions,
) -> Result<Value, CoreError> {
    let (mldsa_key, ed_key) = composite_key
        .components()
        .ok_or_else(|| generation("a quantum-safe proof set needs a composite key"))?;
    let mldsa_suite = Cryptosuite::for_algorithm(mldsa_key.algorithm())
        .filter(Cryptosuite::is_ml_dsa)
        .ok_or_else(|| generation("the composite key's ML-DSA component has no JCS suite"))?;
    if controller_of(&options.mldsa_verification_method)
        != controller_of(&options.ed25519_verification_method)
    {
        return Err(generation("both verification methods must have the same controller"));
    }
    let make = |suite: Cryptosuite, vm: &str| ProofOptions {
        cryptosuite: suite,
        verification_method: vm.to_owned(),
        proof_purpose: options.proof_purpose.clone(),
        created: options.created.clone(),
        expires: options.expires.clone(),
        challenge: options.challenge.clone(),
        domain: options.domain.clone(),
        id: None,
        nonce: None,
    };
    let obj = check_limits(doc)?;
    let (unsecured, _) = split_proofs(obj)?;
    let pq = create_proof(
        &unsecured,
        &make(mldsa_suite, &options.mldsa_verification_method),
        mldsa_key,
    )?;
    let classic = create_proof(
        &unsecured,
        &make(Cryptosuite::EddsaJcs2022, &options.ed25519_verification_method),
        ed_key,
    )?;
    add_proof(&add_proof(doc, pq)?, classic)
}

mod verify;
pub use verify::*;
