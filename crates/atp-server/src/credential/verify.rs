//! Verification of credentials and presentations: key resolution, proofs, status entries,
//! challenges.

use std::sync::Arc;

use atp_core::did::method::{self, Material, Needs, Relationship};

use super::common::*;
use super::*;
use crate::state::CachedKel;

// ------------------------------------------------------------------------------------------
// Key resolution
// ------------------------------------------------------------------------------------------

/// Collect the verification methods of `doc`'s proofs, with the relationship they need.
pub(super) fn collect_vms(
    doc: &Value,
    rel: Relationship,
    out: &mut BTreeMap<String, Vec<Relationship>>,
) {
    let proofs: Vec<&Value> = match doc.get("proof") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(p @ Value::Object(_)) => vec![p],
        _ => Vec::new(),
    };
    for p in proofs.into_iter().take(data_integrity::MAX_PROOFS + 1) {
        if let Some(vm) = p.get("verificationMethod").and_then(Value::as_str) {
            let rels = out.entry(vm.to_owned()).or_default();
            if !rels.contains(&rel) {
                rels.push(rel);
            }
        }
    }
}

/// Pre-resolved verification-method keys, for the synchronous Data Integrity resolver.
pub(super) struct KeyMap {
    keys: HashMap<String, std::result::Result<PublicKey, String>>,
}

impl KeyMap {
    /// Resolve every verification method in `vms` (at most a few dozen: proofs are bounded).
    /// Each controller's method says what it needs; a key event log is loaded once per
    /// controller.
    async fn resolve(
        state: &NodeState,
        vms: &BTreeMap<String, Vec<Relationship>>,
    ) -> Result<KeyMap> {
        let mut keys = HashMap::new();
        let mut logs: HashMap<String, Option<Arc<CachedKel>>> = HashMap::new();
        for (vm, rels) in vms {
            let controller = data_integrity::controller_of(vm);
            let Some(method) = method::lookup(controller) else {
                let supported: Vec<String> =
                    method::METHODS.iter().map(|m| format!("did:{}", m.name())).collect();
                let why =
                    format!("cannot resolve {vm}: only {} are supported", supported.join(" and "));
                keys.insert(vm.clone(), Err(why));
                continue;
            };
            let log = match method.needs() {
                Needs::Nothing => None,
                Needs::KeyEventLog => {
                    if !logs.contains_key(controller) {
                        let log = match method.check(controller) {
                            Err(_) => None,
                            Ok(()) => state.load_kel(controller).await?,
                        };
                        logs.insert(controller.to_owned(), log);
                    }
                    logs.get(controller).and_then(Option::as_ref)
                }
            };
            let material = log.map_or(Material::Nothing, |kel| Material::VerifiedLog(&kel.state));
            let resolved = method.verification_key(vm, rels, material).map_err(|e| match e {
                CoreError::VcCryptographicSecurity { reason, .. } => reason,
                other => other.to_string(),
            });
            keys.insert(vm.clone(), resolved);
        }
        Ok(KeyMap { keys })
    }

    fn get(&self, vm: &str) -> std::result::Result<PublicKey, CoreError> {
        match self.keys.get(vm) {
            Some(Ok(k)) => Ok(k.clone()),
            Some(Err(why)) => Err(security(ProofErrorKind::VerificationMethod, why.clone())),
            None => Err(security(ProofErrorKind::VerificationMethod, format!("{vm} not resolved"))),
        }
    }
}

// ------------------------------------------------------------------------------------------
// Verification
// ------------------------------------------------------------------------------------------

/// The options of a verification request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VerifyParams {
    pub(crate) policy: ProofPolicy,
    pub(crate) allow_unchecked_status: bool,
}

pub(super) fn verify_one_credential(
    extensions: &Extensions,
    vc_json: &Value,
    now: i64,
    policy: ProofPolicy,
    keys: &KeyMap,
) -> std::result::Result<(vc::CredentialInfo, VerifiedProofs), CoreError> {
    let info = vc::check_credential(vc_json)?;
    let bind_issuer = policy != ProofPolicy::Any || info.issuer.starts_with("did:");
    let opts = VerifyOptions {
        expected_controller: bind_issuer.then(|| info.issuer.clone()),
        now: Some(now),
        ..VerifyOptions::assertion().with_policy(policy)
    };
    let resolver = |vm: &str| keys.get(vm);
    let proofs = data_integrity::verify_proofs(vc_json, &opts, &resolver);
    observe_proofs(extensions, "credential", vc_json, &proofs);
    let proofs = proofs?;
    vc::check_validity_period(&info, now)?;
    Ok((info, proofs))
}

/// Reports the signature check of each proof of `doc` that the verifier reached. Proofs are
/// verified in order and the first failure stops it, naming its index (`proof_index`): so on
/// `SIGNATURE_INVALID` the proofs before it verified and that one did not. Other refusals say
/// nothing about the signatures and are not counted.
pub(super) fn observe_proofs(
    extensions: &Extensions,
    kind: &'static str,
    doc: &Value,
    verified: &std::result::Result<VerifiedProofs, CoreError>,
) {
    match verified {
        Ok(v) => {
            for p in &v.proofs {
                extensions.signature_verified(kind, p.cryptosuite.name(), true);
            }
        }
        Err(CoreError::VcCryptographicSecurity {
            kind: ProofErrorKind::SignatureInvalid,
            proof_index: failed,
            ..
        }) => {
            let proofs: Vec<&Value> = match doc.get("proof") {
                Some(Value::Array(items)) => items.iter().collect(),
                Some(v @ Value::Object(_)) => vec![v],
                _ => Vec::new(),
            };
            let Some(failed) = failed.or((proofs.len() == 1).then_some(0)) else { return };
            for (i, proof) in proofs.iter().enumerate().take(failed.saturating_add(1)) {
                let suite = proof
                    .get("cryptosuite")
                    .and_then(Value::as_str)
                    .and_then(data_integrity::Cryptosuite::from_name);
                if let Some(suite) = suite {
                    extensions.signature_verified(kind, suite.name(), i != failed);
                }
            }
        }
        Err(_) => {}
    }
}

/// Check every `credentialStatus` entry of a credential whose proofs verified.
pub(super) async fn check_status(
    state: &NodeState,
    vc_json: &Value,
    issuer: &str,
    allow_unchecked: bool,
) -> Result<Vec<pb::StatusCheck>> {
    let mut out = Vec::new();
    for raw in status_entries(vc_json) {
        let entry = BitstringStatusListEntry::from_json(raw)?;
        let index = entry.index()?;
        let entry_ref = pb::StatusEntryRef {
            status_list_credential: entry.status_list_credential.clone(),
            status_list_index: index,
            status_purpose: pb_purpose(entry.status_purpose),
        };
        let record = match hosted_list_id(state, &entry.status_list_credential) {
            Some(id) => state.store.get_status_list(id).await?,
            None => None,
        };
        let Some(record) = record else {
            if allow_unchecked {
                out.push(pb::StatusCheck {
                    entry: Some(entry_ref),
                    outcome: pb::StatusCheckOutcome::Unchecked as i32,
                    value: 0,
                    message: String::new(),
                });
                continue;
            }
            return Err(ServerError::rejected(
                reasons::STATUS_LIST_UNAVAILABLE,
                format!(
                    "status list {} is not hosted by this node and cannot be checked",
                    entry.status_list_credential
                ),
            ));
        };
        if record.issuer != issuer {
            return Err(ServerError::Core(CoreError::StatusListCredential(format!(
                "the status list {} is controlled by {}, not by the credential's issuer",
                entry.status_list_credential, record.issuer
            ))));
        }
        if record.purpose != entry.status_purpose {
            return Err(ServerError::Core(CoreError::StatusListPurposeMismatch {
                purpose: entry.status_purpose.as_str(),
            }));
        }
        if record.list.status_size() != entry.status_size() {
            return Err(ServerError::Core(CoreError::StatusListEntry(format!(
                "statusSize {} differs from the list's {}",
                entry.status_size(),
                record.list.status_size()
            ))));
        }
        let value = record.list.get(index)?;
        match entry.status_purpose {
            StatusPurpose::Revocation if value != 0 => {
                return Err(ServerError::rejected(
                    reasons::CREDENTIAL_REVOKED,
                    format!(
                        "the credential is revoked ({} #{index})",
                        entry.status_list_credential
                    ),
                ));
            }
            StatusPurpose::Suspension if value != 0 => {
                return Err(ServerError::rejected(
                    reasons::CREDENTIAL_SUSPENDED,
                    format!(
                        "the credential is suspended ({} #{index})",
                        entry.status_list_credential
                    ),
                ));
            }
            _ => {}
        }
        out.push(pb::StatusCheck {
            entry: Some(entry_ref),
            outcome: pb::StatusCheckOutcome::Clear as i32,
            value: u32::from(value),
            message: entry.message_for(value).unwrap_or_default().to_owned(),
        });
    }
    Ok(out)
}

pub(super) fn pb_proofs(proofs: &VerifiedProofs) -> Vec<pb::VerifiedProof> {
    proofs
        .proofs
        .iter()
        .map(|p| pb::VerifiedProof {
            cryptosuite: p.cryptosuite.name().to_owned(),
            verification_method: p.verification_method.clone(),
            proof_purpose: p.proof_purpose.clone(),
        })
        .collect()
}

/// Verify a credential: structure, proofs (keys resolved from the store or `did:key`),
/// validity period, then every status entry.
pub(crate) async fn verify_credential(
    state: &NodeState,
    vc_json: &Value,
    params: VerifyParams,
) -> Result<pb::VerifiedCredential> {
    let mut vms = BTreeMap::new();
    collect_vms(vc_json, Relationship::Assertion, &mut vms);
    let keys = KeyMap::resolve(state, &vms).await?;
    let (info, proofs) =
        verify_one_credential(&state.extensions, vc_json, now_secs(state), params.policy, &keys)?;
    let status_checks =
        check_status(state, vc_json, &info.issuer, params.allow_unchecked_status).await?;
    crate::trust::record_verified_credential(state, vc_json, &info, params.policy, &status_checks)
        .await;
    Ok(verified_credential(info, &proofs, status_checks))
}

/// Warning: a `credentialStatus` entry was left unchecked (the caller allowed it).
pub const WARNING_STATUS_UNCHECKED: &str = "STATUS_UNCHECKED";
/// Warning: the issuer is not a DID, so nothing bound it to the keys that made the proofs
/// (possible only under the interop policy, see the module documentation).
pub const WARNING_ISSUER_NOT_BOUND: &str = "ISSUER_NOT_BOUND";

/// The result of a verified credential, with what the relying party must still judge itself.
pub(super) fn verified_credential(
    info: vc::CredentialInfo,
    proofs: &VerifiedProofs,
    status_checks: Vec<pb::StatusCheck>,
) -> pb::VerifiedCredential {
    let mut warnings = Vec::new();
    if status_checks.iter().any(|s| s.outcome != pb::StatusCheckOutcome::Clear as i32) {
        warnings.push(WARNING_STATUS_UNCHECKED.to_owned());
    }
    if !info.issuer.starts_with("did:") {
        warnings.push(WARNING_ISSUER_NOT_BOUND.to_owned());
    }
    pb::VerifiedCredential {
        id: info.id.unwrap_or_default(),
        issuer: info.issuer,
        types: info.types,
        proofs: pb_proofs(proofs),
        status_checks,
        warnings,
    }
}

pub(super) fn check_challenge_field(field: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_CHALLENGE_BYTES {
        return Err(ServerError::field(field, format!("must be 1 to {MAX_CHALLENGE_BYTES} bytes")));
    }
    Ok(())
}

/// Verify a presentation and consume its challenge (single use per domain on this node).
pub(crate) async fn verify_presentation(
    state: &NodeState,
    vp_json: &Value,
    challenge: &str,
    domain: &str,
    params: VerifyParams,
) -> Result<pb::VerifyPresentationResponse> {
    check_challenge_field("challenge", challenge)?;
    check_challenge_field("domain", domain)?;
    let mut vms = BTreeMap::new();
    collect_vms(vp_json, Relationship::Authentication, &mut vms);
    let embedded: Vec<&Value> = match vp_json.get("verifiableCredential") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    };
    for vc_json in &embedded {
        collect_vms(vc_json, Relationship::Assertion, &mut vms);
    }
    let keys = KeyMap::resolve(state, &vms).await?;
    let now = now_secs(state);
    let info = vc::check_presentation(vp_json)?;
    let opts = VerifyOptions {
        expected_controller: info.holder.clone(),
        now: Some(now),
        ..VerifyOptions::authentication(challenge, domain).with_policy(params.policy)
    };
    let resolver = |vm: &str| keys.get(vm);
    let proofs = data_integrity::verify_proofs(vp_json, &opts, &resolver);
    observe_proofs(&state.extensions, "presentation", vp_json, &proofs);
    let proofs = proofs?;
    let mut credentials = Vec::new();
    let mut verified_credentials = Vec::new();
    for (i, vc_json) in embedded.iter().enumerate() {
        let enveloped = vc::types_of("type", vc_json.get("type"))
            .is_ok_and(|t| t.iter().any(|t| t == vc::ENVELOPED_VERIFIABLE_CREDENTIAL));
        if enveloped {
            return Err(ServerError::Core(CoreError::VcMalformedValue {
                property: format!("verifiableCredential[{i}]"),
                reason: "enveloped credentials are not verified by this node".into(),
            }));
        }
        let (cinfo, cproofs) =
            verify_one_credential(&state.extensions, vc_json, now, params.policy, &keys)
                .map_err(|e| e.within(&format!("verifiableCredential[{i}]")))?;
        let status_checks =
            check_status(state, vc_json, &cinfo.issuer, params.allow_unchecked_status).await?;
        verified_credentials.push((*vc_json, cinfo.clone(), status_checks.clone()));
        credentials.push(verified_credential(cinfo, &cproofs, status_checks));
    }
    // Everything verified: consume the challenge, keyed by domain and a 128-bit digest of the
    // challenge. Kept at least PRESENTATION_CHALLENGE_RETENTION_MS, or until the latest proof
    // `expires` when that is later.
    let now_ms = state.now_ms();
    let expires_ms = proofs
        .proofs
        .iter()
        .filter_map(|p| p.expires.map(|e| e.unix_millis()))
        .max()
        .unwrap_or(i64::MIN);
    let keep_until = now_ms.saturating_add(PRESENTATION_CHALLENGE_RETENTION_MS).max(expires_ms);
    let digest = atp_crypto::sha256(challenge.as_bytes());
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&digest[..16]);
    match state.caches.presentation_challenges.check_and_insert(domain, &nonce, keep_until, now_ms)
    {
        ReplayCheck::Fresh => {
            let parts: [&[u8]; 2] = [domain.as_bytes(), &digest];
            let scope = "presentation";
            match crate::cluster::first_use(state, scope, &parts, keep_until, now_ms).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(ServerError::rejected(
                        reasons::PRESENTATION_CHALLENGE_REPLAY,
                        "this challenge was already consumed for this domain (on another node)",
                    ));
                }
                Err(e) => {
                    // Not consumed: the same presentation, retried, must not be a replay here.
                    state.caches.presentation_challenges.forget(domain, &nonce);
                    return Err(e);
                }
            }
        }
        ReplayCheck::Replayed => {
            return Err(ServerError::rejected(
                reasons::PRESENTATION_CHALLENGE_REPLAY,
                "this challenge was already consumed for this domain",
            ));
        }
        ReplayCheck::Full => {
            return Err(ServerError::Unavailable(
                "the presentation challenge cache is full; retry later".into(),
            ));
        }
    }
    // Recorded only once the whole presentation verified and its challenge was consumed.
    for (vc_json, cinfo, status_checks) in &verified_credentials {
        crate::trust::record_verified_credential(
            state,
            vc_json,
            cinfo,
            params.policy,
            status_checks,
        )
        .await;
    }
    Ok(pb::VerifyPresentationResponse {
        holder: proofs.controller.clone(),
        proofs: pb_proofs(&proofs),
        credentials,
        proof_policy: pb_policy(params.policy),
    })
}

// ------------------------------------------------------------------------------------------
