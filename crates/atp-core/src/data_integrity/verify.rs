//! Verification: proof policies, one proof, proof sets, credentials and presentations.

use super::*;

// ------------------------------------------------------------------------------------------
// Verification
// ------------------------------------------------------------------------------------------

/// Which combinations of valid proofs a verifier accepts. In every policy, any invalid proof
/// present makes the whole document invalid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProofPolicy {
    /// The ATP default: a valid ML-DSA proof (`mldsa65-jcs-2024` or `mldsa44-jcs-2024`) and a
    /// valid `eddsa-jcs-2022` proof whose verification methods have the same controller.
    #[default]
    QuantumSafe,
    /// At least one valid proof of any supported suite (W3C interoperability), by a controller
    /// with a single key such as `did:key`. A `did:atp` controller still needs both of its
    /// proofs: its key is composite, and one component alone is a downgrade.
    Any,
}

/// What the verifier expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The policy over the set of proofs.
    pub policy: ProofPolicy,
    /// The expected `proofPurpose`.
    pub proof_purpose: String,
    /// The expected `challenge`; required when the purpose is `authentication`.
    pub challenge: Option<String>,
    /// The expected `domain`; required when the purpose is `authentication`.
    pub domain: Option<String>,
    /// When set, only proofs by this controller count towards the policy (the credential
    /// functions set it to the issuer, the presentation functions to the holder).
    pub expected_controller: Option<String>,
    /// The current time (Unix seconds), for `expires`; `None` skips that check.
    pub now: Option<i64>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self::assertion()
    }
}

impl VerifyOptions {
    /// Verify `assertionMethod` proofs under the quantum-safe policy.
    pub fn assertion() -> Self {
        VerifyOptions {
            policy: ProofPolicy::QuantumSafe,
            proof_purpose: ASSERTION_METHOD.into(),
            challenge: None,
            domain: None,
            expected_controller: None,
            now: None,
        }
    }

    /// Verify `authentication` proofs that bind `challenge` and `domain`, under the
    /// quantum-safe policy.
    pub fn authentication(challenge: impl Into<String>, domain: impl Into<String>) -> Self {
        VerifyOptions {
            proof_purpose: AUTHENTICATION.into(),
            challenge: Some(challenge.into()),
            domain: Some(domain.into()),
            ..Self::assertion()
        }
    }

    /// Use `policy`.
    pub fn with_policy(mut self, policy: ProofPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Check `expires` against `now` (Unix seconds).
    pub fn at(mut self, now: i64) -> Self {
        self.now = Some(now);
        self
    }
}

/// One proof that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedProof {
    /// Its cryptosuite.
    pub cryptosuite: Cryptosuite,
    /// Its verification method.
    pub verification_method: String,
    /// The controller of the verification method ([`controller_of`]).
    pub controller: String,
    /// Its proof purpose.
    pub proof_purpose: String,
    /// `created`, if present.
    pub created: Option<DateTimeStamp>,
    /// `expires`, if present.
    pub expires: Option<DateTimeStamp>,
    /// The challenge it binds, if any. **The caller must reject a challenge it has seen
    /// before** (this crate has no state).
    pub challenge: Option<String>,
    /// The domain(s) it binds.
    pub domains: Vec<String>,
}

/// Every proof on a document, all verified, and the policy satisfied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedProofs {
    /// The proofs, in document order.
    pub proofs: Vec<VerifiedProof>,
    /// The controller whose proofs satisfied the policy.
    pub controller: String,
}

impl VerifiedProofs {
    /// The challenge bound by the proofs (all proofs that carry one bind the same, expected
    /// value). Consume it in a replay cache.
    pub fn challenge(&self) -> Option<&str> {
        self.proofs.iter().find_map(|p| p.challenge.as_deref())
    }
}

fn opt_str<'a>(proof: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, CoreError> {
    match proof.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(security(ProofErrorKind::MalformedProof, format!("{key} must be a string"))),
    }
}

fn req_str<'a>(proof: &'a Map<String, Value>, key: &str) -> Result<&'a str, CoreError> {
    opt_str(proof, key)?
        .ok_or_else(|| security(ProofErrorKind::MalformedProof, format!("{key} is missing")))
}

fn opt_time(proof: &Map<String, Value>, key: &str) -> Result<Option<DateTimeStamp>, CoreError> {
    opt_str(proof, key)?
        .map(|s| {
            DateTimeStamp::parse(s).map_err(|why| {
                security(ProofErrorKind::MalformedProof, format!("{key} {s:?}: {why}"))
            })
        })
        .transpose()
}

/// A verifier of `authentication` proofs must say which challenge and domain it expects;
/// without them any (replayed) presentation proof would pass.
fn check_authentication_options(options: &VerifyOptions) -> Result<(), CoreError> {
    if options.proof_purpose != AUTHENTICATION {
        return Ok(());
    }
    if options.challenge.is_none() {
        return Err(security(
            ProofErrorKind::InvalidChallenge,
            "authentication proofs need an expected challenge",
        ));
    }
    if options.domain.is_none() {
        return Err(security(
            ProofErrorKind::InvalidDomain,
            "authentication proofs need an expected domain",
        ));
    }
    Ok(())
}

/// Verify one proof over `unsecured_document` (the document without any proof).
///
/// Checks, in order: the proof's shape, `type`, `cryptosuite`, no `previousProof`, the
/// `proofPurpose`, `expires`, `challenge` and `domain` against `options`, that its `@context`
/// equals the document's, the key from `resolver` (its algorithm must be the suite's), and the
/// signature.
pub fn verify_proof(
    unsecured_document: &Value,
    proof: &Value,
    options: &VerifyOptions,
    resolver: &Resolver<'_>,
) -> Result<VerifiedProof, CoreError> {
    use ProofErrorKind as K;
    check_authentication_options(options)?;
    let p = proof
        .as_object()
        .ok_or_else(|| security(K::MalformedProof, "a proof must be a JSON object"))?;
    if req_str(p, "type")? != DATA_INTEGRITY_PROOF {
        return Err(security(K::MalformedProof, format!("type must be {DATA_INTEGRITY_PROOF:?}")));
    }
    let suite_name = req_str(p, "cryptosuite")?;
    let suite = Cryptosuite::from_name(suite_name)
        .ok_or_else(|| security(K::UnsupportedCryptosuite, format!("{suite_name:?}")))?;
    if p.contains_key("previousProof") {
        return Err(security(K::ProofChainUnsupported, "previousProof is not supported"));
    }
    let vm = req_str(p, "verificationMethod")?;
    if !vc::is_url(vm) {
        return Err(security(K::MalformedProof, "verificationMethod must be a URL"));
    }
    let purpose = req_str(p, "proofPurpose")?;
    if purpose != options.proof_purpose {
        return Err(security(
            K::ProofPurposeMismatch,
            format!("expected {:?}, got {purpose:?}", options.proof_purpose),
        ));
    }
    let signature = suite.decode_proof_value(req_str(p, "proofValue")?)?;
    if let Some(id) = opt_str(p, "id")?
        && !vc::is_url(id)
    {
        return Err(security(K::MalformedProof, "a proof id must be a URL"));
    }
    let created = opt_time(p, "created")?;
    let expires = opt_time(p, "expires")?;
    if let (Some(exp), Some(now)) = (expires, options.now)
        && DateTimeStamp::from_unix(now) > exp
    {
        return Err(security(K::ProofExpired, format!("the proof expired at {exp}")));
    }
    let challenge = opt_str(p, "challenge")?;
    if let Some(expected) = &options.challenge
        && challenge != Some(expected.as_str())
    {
        return Err(security(
            K::InvalidChallenge,
            "the proof does not bind the expected challenge",
        ));
    }
    let domains: Vec<String> = match p.get("domain") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|d| d.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| security(K::MalformedProof, "domain must be strings"))?,
        Some(_) => return Err(security(K::MalformedProof, "domain must be a string or strings")),
    };
    if let Some(expected) = &options.domain
        && !domains.iter().any(|d| d == expected)
    {
        return Err(security(K::InvalidDomain, "the proof does not bind the expected domain"));
    }
    // Stricter than "starts with": the signed context must be exactly the document's, so no
    // context can be appended after signing.
    if let Some(ctx) = p.get("@context")
        && unsecured_document.get("@context") != Some(ctx)
    {
        return Err(security(
            K::ContextMismatch,
            "the proof's @context differs from the document's",
        ));
    }
    let key = resolver(vm)?;
    if key.algorithm() != suite.algorithm() {
        return Err(security(
            K::VerificationMethod,
            format!("{suite} needs a {} key, {vm} is {}", suite.algorithm(), key.algorithm()),
        ));
    }
    let config = proof_configuration(unsecured_document, proof)?;
    let inputs = proof_inputs(suite, unsecured_document, &config)?;
    key.verify(&inputs.hash_data, b"", &signature)
        .map_err(|e| security(K::SignatureInvalid, format!("{suite} proof by {vm}: {e}")))?;
    Ok(VerifiedProof {
        cryptosuite: suite,
        verification_method: vm.to_owned(),
        controller: controller_of(vm).to_owned(),
        proof_purpose: purpose.to_owned(),
        created,
        expires,
        challenge: challenge.map(str::to_owned),
        domains,
    })
}

/// Verify every proof on `doc` and apply the policy of `options`.
///
/// Fails with `PARSING_ERROR` over the limits, and with `CRYPTOGRAPHIC_SECURITY_ERROR` (see
/// [`ProofErrorKind`]) when there is no proof, any proof is invalid, or the valid proofs do not
/// satisfy the policy. Errors from `resolver` are returned as they are.
pub fn verify_proofs(
    doc: &Value,
    options: &VerifyOptions,
    resolver: &Resolver<'_>,
) -> Result<VerifiedProofs, CoreError> {
    use ProofErrorKind as K;
    let obj = check_limits(doc)?;
    check_authentication_options(options)?;
    let (unsecured, proofs) = split_proofs(obj)?;
    if proofs.is_empty() {
        return Err(security(K::MissingProof, "the document has no proof"));
    }
    if proofs.len() > MAX_PROOFS {
        return Err(security(
            K::TooManyProofs,
            format!("{} proofs, more than the limit of {MAX_PROOFS}", proofs.len()),
        ));
    }
    let verified = proofs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            verify_proof(&unsecured, p, options, resolver).map_err(|e| match e {
                CoreError::VcCryptographicSecurity { kind, reason, .. } => {
                    CoreError::VcCryptographicSecurity {
                        kind,
                        reason: format!("proof {i}: {reason}"),
                        proof_index: Some(i),
                    }
                }
                other => other,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let counts = |p: &&VerifiedProof| {
        options.expected_controller.as_deref().is_none_or(|c| c == p.controller)
    };
    // A valid ML-DSA proof and a valid eddsa-jcs-2022 proof, both by `controller`.
    let has_pair = |controller: &str| {
        let by = |suite: fn(&Cryptosuite) -> bool| {
            verified
                .iter()
                .filter(counts)
                .any(|p| p.controller == controller && suite(&p.cryptosuite))
        };
        by(Cryptosuite::is_ml_dsa) && by(|s| *s == Cryptosuite::EddsaJcs2022)
    };
    let controller = match options.policy {
        // A did:atp key is always composite (`DidMethod::composite_keys`), and its two proofs
        // are its two components: one alone is a downgrade, which no policy accepts
        // (docs/design.md §3). The relaxation is for controllers with a single key, such as
        // did:key, and for DIDs of methods ATP does not know.
        ProofPolicy::Any => verified
            .iter()
            .filter(counts)
            .find(|p| {
                let composite = crate::did::method::lookup(&p.controller)
                    .is_some_and(|method| method.composite_keys());
                !composite || has_pair(&p.controller)
            })
            .map(|p| p.controller.clone()),
        ProofPolicy::QuantumSafe => verified
            .iter()
            .filter(counts)
            .find(|p| p.cryptosuite.is_ml_dsa() && has_pair(&p.controller))
            .map(|p| p.controller.clone()),
    };
    match controller {
        Some(controller) => Ok(VerifiedProofs { proofs: verified, controller }),
        None if options.expected_controller.is_some() && !verified.iter().any(|p| counts(&p)) => {
            Err(security(
                K::ControllerMismatch,
                format!(
                    "no proof is by {}",
                    options.expected_controller.as_deref().unwrap_or_default()
                ),
            ))
        }
        None if options.policy == ProofPolicy::Any => Err(security(
            K::PolicyNotSatisfied,
            "a did:atp controller's key is composite: its valid ML-DSA proof and its valid \
             eddsa-jcs-2022 proof are both needed, under every policy",
        )),
        None => Err(security(
            K::PolicyNotSatisfied,
            "the quantum-safe policy needs a valid ML-DSA proof and a valid eddsa-jcs-2022 proof \
             by the same controller",
        )),
    }
}

/// A credential whose structure, proofs and validity period were verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCredential {
    /// The structural facts ([`vc::check_credential`]).
    pub credential: CredentialInfo,
    /// The proofs.
    pub proofs: VerifiedProofs,
}

/// Verify a secured credential: the VC 2.0 rules, the proofs under `options` (only proofs by
/// the issuer count towards the policy), and the validity period at `now` (Unix seconds, also
/// used for proof `expires`).
///
/// `options.proof_purpose` is normally `assertionMethod` ([`VerifyOptions::assertion`]).
pub fn verify_credential(
    vc: &Value,
    now: i64,
    options: &VerifyOptions,
    resolver: &Resolver<'_>,
) -> Result<VerifiedCredential, CoreError> {
    let credential = vc::check_credential(vc)?;
    let opts = VerifyOptions {
        expected_controller: Some(credential.issuer.clone()),
        now: Some(now),
        ..options.clone()
    };
    let proofs = verify_proofs(vc, &opts, resolver)?;
    vc::check_validity_period(&credential, now)?;
    Ok(VerifiedCredential { credential, proofs })
}

/// A presentation whose structure and proofs, and whose embedded credentials, were verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPresentation {
    /// The structural facts ([`vc::check_presentation`]).
    pub presentation: PresentationInfo,
    /// The presentation's own proofs. Consume [`VerifiedProofs::challenge`] in a replay cache.
    pub proofs: VerifiedProofs,
    /// The embedded (non-enveloped) credentials, each verified with [`verify_credential`].
    pub credentials: Vec<VerifiedCredential>,
}

/// Verify a secured presentation: the VC 2.0 rules, its `authentication` proofs (which must
/// bind the `challenge` and `domain` of `options`; when a `holder` is present only the holder's
/// proofs count), and every embedded credential with [`verify_credential`] under the same
/// policy and `now`. `EnvelopedVerifiableCredential`s are opaque here: the caller verifies
/// them with their own securing mechanism (see [`PresentationInfo::enveloped_credentials`]).
pub fn verify_presentation(
    vp: &Value,
    now: i64,
    options: &VerifyOptions,
    resolver: &Resolver<'_>,
) -> Result<VerifiedPresentation, CoreError> {
    let presentation = vc::check_presentation(vp)?;
    let opts = VerifyOptions {
        expected_controller: presentation.holder.clone(),
        now: Some(now),
        ..options.clone()
    };
    let proofs = verify_proofs(vp, &opts, resolver)?;
    let credential_opts = VerifyOptions { policy: options.policy, ..VerifyOptions::assertion() };
    let embedded: Vec<&Value> = match vp.get("verifiableCredential") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    };
    let mut credentials = Vec::new();
    for (i, vc) in embedded.into_iter().enumerate() {
        let enveloped = vc::types_of("type", vc.get("type"))
            .is_ok_and(|t| t.iter().any(|t| t == vc::ENVELOPED_VERIFIABLE_CREDENTIAL));
        if enveloped {
            continue;
        }
        let verified = verify_credential(vc, now, &credential_opts, resolver)
            .map_err(|e| e.within(&format!("verifiableCredential[{i}]")))?;
        credentials.push(verified);
    }
    Ok(VerifiedPresentation { presentation, proofs, credentials })
}
