//! `atp.v1.CredentialService`: issue, verify, status lists (docs/protocol.md Parts C and D).
//!
//! The logic lives in free functions shared by the gRPC service ([`CredentialApi`]) and the
//! HTTP VC-API routes ([`crate::http`]), so both answer the same thing.
//!
//! - **Issue.** Admin-authorised (`credential.issue`), audited before anything is written. The
//!   node signs as its own DID with a quantum-safe proof set (`<node did>#mldsa65` and
//!   `<node did>#ed25519`), after allocating `credentialStatus` entries from its status lists
//!   (a new list of [`STATUS_LIST_ENTRIES`] entries is created when every list is full).
//! - **Verify.** Keys are resolved before the (synchronous) Data Integrity verifier runs:
//!   `did:atp` keys from the *stored, verified* key event log of the controller, and only keys
//!   that the DID document lists under the relationship the proof needs (`assertionMethod` for
//!   credentials, `authentication` for presentations); `did:key` from the key itself. Anything
//!   else does not resolve. Then every `credentialStatus` entry that points at a list this node
//!   hosts is read from the store.
//! - **Presentations.** `challenge` and `domain` are required; after the presentation verified,
//!   its challenge is consumed in a bounded replay set (per domain) that fails closed when full.
//! - **UpdateStatus.** Two paths. The node's own lists change through an admin call
//!   (`status.update`; revocation is final). Lists the node hosts for an external issuer
//!   (created by an admin with HostStatusList, `status_list.host`) change only through the
//!   issuer's signed updates (`atp_core::status_update`): the signature by the issuer's
//!   current `did:atp` key authorizes them, `update_seq` must grow (no replay), and all changes
//!   of one update apply together with one `status-update` log leaf.
//!
//! # Interoperability note: `PROOF_POLICY_ANY` and non-DID issuers
//!
//! Under the default quantum-safe policy only proofs by the issuer count (as in
//! `atp_core::data_integrity::verify_credential`). Under `PROOF_POLICY_ANY`, when `issuer` is
//! **not a DID** (e.g. `https://vc.example/issuers/5678` in the W3C `eddsa-jcs-2022` vector),
//! the node cannot bind the issuer URL to a key (it fetches no controller documents), so it
//! verifies the proofs without that binding; the response names every proof's verification
//! method and carries the warning `ISSUER_NOT_BOUND`, and the relying party must decide whether
//! that key speaks for the issuer. When the issuer *is* a DID, its proofs must be by the issuer
//! under every policy. A status entry left unchecked (`allow_unchecked_status`) is likewise
//! reported as `STATUS_UNCHECKED`, and the VC-API then does not list `credentialStatus` among
//! its checks.

use std::collections::{BTreeMap, HashMap};

use atp_core::CoreError;
use atp_core::data_integrity::{
    self, ProofErrorKind, ProofPolicy, ProofSetOptions, VerifiedProofs, VerifyOptions,
};
use atp_core::envelope::ReplayCheck;
use atp_core::status_list::{self, BitstringStatusListEntry, StatusPurpose};
use atp_core::status_update::{self, StatusListUpdate};
use atp_core::vc::{self, DateTimeStamp};
use atp_crypto::PublicKey;
use atp_grpc::reasons;
use atp_grpc::v1 as pb;
use atp_grpc::v1::credential_service_server::CredentialService;
use atp_store::{NewSignedStatusUpdate, NewStatusList};
use serde_json::Value;
use tonic::{Request, Response, Status};

use crate::error::{Result, ServerError};
use crate::extensions::{AuditRecord, CallInfo, DomainEvent, Extensions};
use crate::state::{AppState, NodeState};

/// The largest unsigned credential accepted by IssueCredential, in bytes.
pub const MAX_ISSUE_BYTES: usize = 262_144;
/// The largest credential accepted by VerifyCredential, in bytes.
pub const MAX_CREDENTIAL_BYTES: usize = 1_048_576;
/// The largest presentation accepted by VerifyPresentation, in bytes.
pub const MAX_PRESENTATION_BYTES: usize = 4_194_304;
/// The number of entries of every status list the node creates (the spec's minimum).
pub const STATUS_LIST_ENTRIES: u64 = status_list::MIN_ENTRIES;
/// How long a consumed presentation challenge is remembered (at least; longer when a proof's
/// `expires` is later), in milliseconds.
pub const PRESENTATION_CHALLENGE_RETENTION_MS: i64 = 24 * 3_600_000;
/// The longest presentation `challenge` / `domain`, in bytes.
pub const MAX_CHALLENGE_BYTES: usize = 256;

/// The largest hosted status list, in entries (1 MiB of bitstring at `statusSize` 8).
pub const MAX_HOSTED_LIST_ENTRIES: u64 = 1_048_576;

/// The operation names passed to the authorizer.
pub const OP_ISSUE: &str = "credential.issue";
/// See [`OP_ISSUE`].
pub const OP_STATUS_UPDATE: &str = "status.update";
/// See [`OP_ISSUE`].
pub const OP_STATUS_LIST_HOST: &str = "status_list.host";

// ------------------------------------------------------------------------------------------
// Small helpers
// ------------------------------------------------------------------------------------------

fn security(kind: ProofErrorKind, reason: impl Into<String>) -> CoreError {
    CoreError::VcCryptographicSecurity { kind, reason: reason.into(), proof_index: None }
}

/// Parse request JSON with a size limit; errors are VC `PARSING_ERROR`.
pub(crate) fn parse_json(bytes: &[u8], max: usize, field: &str) -> Result<Value> {
    if bytes.is_empty() {
        return Err(ServerError::field(field, "is required"));
    }
    if bytes.len() > max {
        return Err(ServerError::field(
            field,
            format!("is {} bytes, more than {max}", bytes.len()),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ServerError::Core(CoreError::VcParsing(format!("{field}: {e}"))))
}

fn now_secs(state: &NodeState) -> i64 {
    state.now_ms().div_euclid(1000)
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    atp_crypto::random_bytes(&mut b).map_err(|e| ServerError::internal(format!("rng: {e}")))?;
    Ok(b)
}

/// The proto policy (unspecified = quantum-safe); unknown values are `FIELD_INVALID`.
pub(crate) fn proof_policy(value: i32) -> Result<ProofPolicy> {
    match pb::ProofPolicy::try_from(value) {
        Ok(pb::ProofPolicy::Unspecified | pb::ProofPolicy::QuantumSafe) => {
            Ok(ProofPolicy::QuantumSafe)
        }
        Ok(pb::ProofPolicy::Any) => Ok(ProofPolicy::Any),
        Err(_) => Err(ServerError::field("proof_policy", format!("unknown value {value}"))),
    }
}

fn pb_policy(p: ProofPolicy) -> i32 {
    match p {
        ProofPolicy::Any => pb::ProofPolicy::Any as i32,
        _ => pb::ProofPolicy::QuantumSafe as i32,
    }
}

fn pb_purpose(p: StatusPurpose) -> i32 {
    match p {
        StatusPurpose::Revocation => pb::StatusPurpose::Revocation as i32,
        StatusPurpose::Suspension => pb::StatusPurpose::Suspension as i32,
        StatusPurpose::Message => pb::StatusPurpose::Message as i32,
    }
}

fn purpose_from_pb(value: i32, field: &str) -> Result<StatusPurpose> {
    match pb::StatusPurpose::try_from(value) {
        Ok(pb::StatusPurpose::Revocation) => Ok(StatusPurpose::Revocation),
        Ok(pb::StatusPurpose::Suspension) => Ok(StatusPurpose::Suspension),
        Ok(pb::StatusPurpose::Message) => Ok(StatusPurpose::Message),
        _ => Err(ServerError::field(field, format!("not a status purpose: {value}"))),
    }
}

/// The URL prefix of the node's status lists: `<base>/status/`.
fn status_prefix(state: &NodeState) -> String {
    format!("{}/status/", state.public_base_url.trim_end_matches('/'))
}

/// The URL of status list `list_id`.
pub(crate) fn status_list_url(state: &NodeState, list_id: &str) -> String {
    format!("{}{list_id}", status_prefix(state))
}

/// The list id of a URL that points at one of this node's lists, if it does.
pub(crate) fn hosted_list_id<'a>(state: &NodeState, url: &'a str) -> Option<&'a str> {
    let id = url.strip_prefix(&status_prefix(state))?;
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then_some(id)
}

fn canonical(value: &Value) -> Result<Vec<u8>> {
    Ok(atp_core::jcs::canonicalize(value)?)
}

async fn log_receipt(state: &NodeState, index: u64) -> Result<Option<pb::LogReceipt>> {
    let entries = state.store.get_entries(index, 1).await?;
    Ok(entries
        .into_iter()
        .find(|e| e.index == index)
        .map(|e| pb::LogReceipt { leaf_index: e.index, leaf_hash: e.leaf_hash.to_vec() }))
}

// ------------------------------------------------------------------------------------------
// Key resolution
// ------------------------------------------------------------------------------------------

/// The relationship a proof's verification method must be listed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Relationship {
    Assertion,
    Authentication,
}

/// Collect the verification methods of `doc`'s proofs, with the relationship they need.
fn collect_vms(doc: &Value, rel: Relationship, out: &mut BTreeMap<String, Vec<Relationship>>) {
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
struct KeyMap {
    keys: HashMap<String, std::result::Result<PublicKey, String>>,
}

impl KeyMap {
    /// Resolve every verification method in `vms` (at most a few dozen: proofs are bounded).
    async fn resolve(
        state: &NodeState,
        vms: &BTreeMap<String, Vec<Relationship>>,
    ) -> Result<KeyMap> {
        let mut keys = HashMap::new();
        let mut docs: HashMap<String, Option<atp_core::did::DidDocument>> = HashMap::new();
        for (vm, rels) in vms {
            let controller = data_integrity::controller_of(vm);
            let resolved = if controller.starts_with("did:key:") {
                // did:key documents list their key under every relationship.
                atp_core::did_key::parse_did_key(vm).map_err(|e| e.to_string())
            } else if controller.starts_with(atp_core::kel::DID_ATP_PREFIX) {
                if !docs.contains_key(controller) {
                    let doc = match atp_core::did::parse_did_atp(controller) {
                        Err(_) => None,
                        Ok(_) => match state.load_kel(controller).await? {
                            Some(kel) => Some(atp_core::did::did_document(&kel.state)?),
                            None => None,
                        },
                    };
                    docs.insert(controller.to_owned(), doc);
                }
                match docs.get(controller).and_then(Option::as_ref) {
                    None => Err(format!("{controller} is not known to this node")),
                    Some(doc) => key_from_doc(doc, vm, rels),
                }
            } else {
                Err(format!("cannot resolve {vm}: only did:atp and did:key are supported"))
            };
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

fn key_from_doc(
    doc: &atp_core::did::DidDocument,
    vm: &str,
    rels: &[Relationship],
) -> std::result::Result<PublicKey, String> {
    for rel in rels {
        let (list, name) = match rel {
            Relationship::Assertion => (&doc.assertion_method, "assertionMethod"),
            Relationship::Authentication => (&doc.authentication, "authentication"),
        };
        if !list.iter().any(|id| id == vm) {
            return Err(format!("{vm} is not listed under {name} of {}", doc.id));
        }
    }
    let method = doc
        .verification_method(vm)
        .ok_or_else(|| format!("{vm} is not a verification method of {}", doc.id))?;
    PublicKey::from_multikey(&method.public_key_multibase).map_err(|e| e.to_string())
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

fn verify_one_credential(
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
fn observe_proofs(
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

pub(crate) fn status_entries(vc_json: &Value) -> Vec<&Value> {
    match vc_json.get("credentialStatus") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    }
}

/// Check every `credentialStatus` entry of a credential whose proofs verified.
async fn check_status(
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

fn pb_proofs(proofs: &VerifiedProofs) -> Vec<pb::VerifiedProof> {
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
fn verified_credential(
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

fn check_challenge_field(field: &str, value: &str) -> Result<()> {
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
        ReplayCheck::Fresh => {}
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
// Issuing
// ------------------------------------------------------------------------------------------

/// Issue `credential` (unsigned JSON) as the node, after authorising and auditing the call.
pub(crate) async fn issue(
    state: &NodeState,
    call: &CallInfo,
    credential: Value,
    purposes: &[StatusPurpose],
) -> Result<(Value, Vec<pb::StatusEntryRef>)> {
    let principal = state.extensions.authorize(call, OP_ISSUE, &state.node_did).await?;
    let mut obj = match credential {
        Value::Object(o) => o,
        _ => {
            return Err(ServerError::Core(CoreError::VcParsing(
                "a verifiable credential must be a JSON object".into(),
            )));
        }
    };
    if obj.contains_key("proof") {
        return Err(ServerError::field("credential_json", "an unsigned credential has no proof"));
    }
    match obj.get("issuer") {
        None => {
            obj.insert("issuer".into(), Value::String(state.node_did.clone()));
        }
        Some(Value::String(s)) if *s == state.node_did => {}
        Some(Value::Object(o)) if o.get("id").and_then(Value::as_str) == Some(&state.node_did) => {}
        Some(_) => {
            return Err(ServerError::field(
                "credential_json",
                format!("issuer must be absent or the node's DID {}", state.node_did),
            ));
        }
    }
    let mut seen = Vec::new();
    for p in purposes {
        if !matches!(p, StatusPurpose::Revocation | StatusPurpose::Suspension) {
            return Err(ServerError::field(
                "status_purposes",
                "only revocation and suspension entries are allocated",
            ));
        }
        if seen.contains(p) {
            return Err(ServerError::field("status_purposes", format!("{p} is listed twice")));
        }
        seen.push(*p);
    }
    if !purposes.is_empty() && obj.contains_key("credentialStatus") {
        return Err(ServerError::field(
            "credential_json",
            "credentialStatus is present while status_purposes asks for entries",
        ));
    }
    // The structural VC 2.0 rules before anything is allocated or written.
    vc::check_credential(&Value::Object(obj.clone()))?;
    if atp_core::jcs::check_value(&Value::Object(obj.clone())).is_err() {
        return Err(ServerError::field("credential_json", "has no JCS canonical form"));
    }

    state
        .extensions
        .audit
        .record(&AuditRecord {
            operation: OP_ISSUE.into(),
            principal: principal.name().to_owned(),
            resource: state.node_did.clone(),
            peer: call.peer,
            outcome: "OK".into(),
            at_unix_ms: state.now_ms(),
            detail: format!(
                "status purposes: [{}]",
                purposes.iter().map(StatusPurpose::as_str).collect::<Vec<_>>().join(",")
            ),
        })
        .await?;

    let mut entries = Vec::new();
    let mut refs = Vec::new();
    for purpose in purposes {
        let slot = allocate(state, *purpose).await?;
        let url = status_list_url(state, &slot.list_id);
        let entry = BitstringStatusListEntry::new(
            Some(format!("{url}#{}", slot.index)),
            *purpose,
            slot.index,
            url.clone(),
        );
        entries.push(entry.to_json());
        refs.push(pb::StatusEntryRef {
            status_list_credential: url,
            status_list_index: slot.index,
            status_purpose: pb_purpose(*purpose),
        });
    }
    match entries.len() {
        0 => {}
        1 => {
            obj.insert("credentialStatus".into(), entries.remove(0));
        }
        _ => {
            obj.insert("credentialStatus".into(), Value::Array(entries));
        }
    }
    let signed = sign_as_node(state, &Value::Object(obj))?;
    state.extensions.observer.on_domain_event(&DomainEvent::Other {
        kind: "credential.issued",
        detail: format!("{} status entries", refs.len()),
    });
    Ok((signed, refs))
}

/// Sign `doc` with the node's quantum-safe proof set (`assertionMethod`, created now).
pub(crate) fn sign_as_node(state: &NodeState, doc: &Value) -> Result<Value> {
    let did = &state.node_did;
    let created = DateTimeStamp::from_unix(now_secs(state)).to_string();
    let options =
        ProofSetOptions::assertion(format!("{did}#mldsa65"), format!("{did}#ed25519"), created);
    Ok(data_integrity::sign_quantum_safe_proof_set(doc, &state.node_key, &options)?)
}

async fn allocate(state: &NodeState, purpose: StatusPurpose) -> Result<atp_store::StatusSlot> {
    for _ in 0..3 {
        if let Some(slot) =
            state.store.allocate_status_index(state.node_did.clone(), purpose).await?
        {
            return Ok(slot);
        }
        let list_id = format!("{}-{}", purpose.as_str(), hex::encode(random::<8>()?));
        state
            .store
            .create_status_list(NewStatusList {
                list_id,
                issuer: state.node_did.clone(),
                purpose,
                status_size: 1,
                entries: STATUS_LIST_ENTRIES,
                allocatable: true,
            })
            .await?;
    }
    Err(ServerError::Unavailable("could not allocate a status list entry; retry".into()))
}

// ------------------------------------------------------------------------------------------
// Status lists
// ------------------------------------------------------------------------------------------

/// The signed status list credential of list `list_id`, and its record.
pub(crate) async fn status_list_document(
    state: &NodeState,
    list_id: &str,
) -> Result<(Value, atp_store::StatusListRecord)> {
    let not_found = || {
        ServerError::rejected(
            reasons::STATUS_LIST_NOT_FOUND,
            format!("this node hosts no status list {list_id:?}"),
        )
    };
    let valid_id = !list_id.is_empty()
        && list_id.len() <= 128
        && list_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid_id {
        return Err(not_found());
    }
    let record = state.store.get_status_list(list_id).await?.ok_or_else(not_found)?;
    let url = status_list_url(state, list_id);
    // The list's creation time (store clock), never later than the node clock's now.
    let from_ms = record.created_at_ms.min(state.now_ms());
    let valid_from = DateTimeStamp::from_unix(from_ms.div_euclid(1000)).to_string();
    let unsigned = status_list::status_list_credential(
        &url,
        &state.node_did,
        record.purpose,
        &valid_from,
        &record.list,
    )?;
    Ok((sign_as_node(state, &unsigned)?, record))
}

async fn update_node_status(
    state: &NodeState,
    call: &CallInfo,
    change: pb::NodeIssuerStatusChange,
) -> Result<pb::UpdateStatusResponse> {
    let entry = change.entry.ok_or_else(|| ServerError::field("entry", "is required"))?;
    let principal =
        state.extensions.authorize(call, OP_STATUS_UPDATE, &entry.status_list_credential).await?;
    let action = pb::StatusAction::try_from(change.action)
        .ok()
        .filter(|a| *a != pb::StatusAction::Unspecified)
        .ok_or_else(|| ServerError::field("action", format!("unknown action {}", change.action)))?;
    let purpose = purpose_from_pb(entry.status_purpose, "entry.status_purpose")?;
    let (needed, value) = match action {
        pb::StatusAction::Revoke => (StatusPurpose::Revocation, 1u8),
        pb::StatusAction::Suspend => (StatusPurpose::Suspension, 1),
        _ => (StatusPurpose::Suspension, 0),
    };
    let not_found = || {
        ServerError::rejected(
            reasons::STATUS_LIST_NOT_FOUND,
            format!("this node hosts no status list at {}", entry.status_list_credential),
        )
    };
    let list_id = hosted_list_id(state, &entry.status_list_credential).ok_or_else(not_found)?;
    let record = state.store.get_status_list(list_id).await?.ok_or_else(not_found)?;
    if record.issuer != state.node_did {
        return Err(ServerError::rejected(
            reasons::STATUS_UPDATE_NOT_ISSUER,
            "this list belongs to an external issuer: only its signed updates change it",
        ));
    }
    if purpose != needed || record.purpose != needed {
        return Err(ServerError::Core(CoreError::StatusListPurposeMismatch {
            purpose: record.purpose.as_str(),
        }));
    }
    let index = entry.status_list_index;
    let current = record.list.get(index)?;
    if record.purpose == StatusPurpose::Revocation && current != 0 && value == 0 {
        return Err(ServerError::rejected(
            reasons::STATUS_REVOCATION_FINAL,
            "a revoked credential cannot be reinstated",
        ));
    }
    if current == value {
        return Ok(pb::UpdateStatusResponse {
            status_list_credential: entry.status_list_credential,
            update_seq: record.version,
            log_receipt: None,
        });
    }
    state
        .extensions
        .audit
        .record(&AuditRecord {
            operation: OP_STATUS_UPDATE.into(),
            principal: principal.name().to_owned(),
            resource: format!("{}#{index}", entry.status_list_credential),
            peer: call.peer,
            outcome: "OK".into(),
            at_unix_ms: state.now_ms(),
            detail: format!("{action:?} -> {value}"),
        })
        .await?;
    let update = state.store.set_status(list_id.to_owned(), index, value).await?;
    if update.previous != current && record.purpose == StatusPurpose::Revocation && value == 0 {
        // Unreachable with the actions above; kept as a guard against a concurrent change.
        tracing::warn!(list = list_id, index, "status changed concurrently");
    }
    let receipt = match update.log_index {
        Some(i) => {
            state.log_grew.notify_one();
            log_receipt(state, i).await?
        }
        None => None,
    };
    state.extensions.observer.on_domain_event(&DomainEvent::CredentialStatusChanged {
        list_id,
        purpose: record.purpose.as_str(),
        set: u64::from(value != 0),
        cleared: u64::from(value == 0),
        external: false,
    });
    Ok(pb::UpdateStatusResponse {
        status_list_credential: entry.status_list_credential,
        update_seq: update.version,
        log_receipt: receipt,
    })
}

/// HostStatusList: a new list of an external issuer, changed only by its signed updates.
async fn host_status_list(
    state: &NodeState,
    call: &CallInfo,
    req: pb::HostStatusListRequest,
) -> Result<pb::HostStatusListResponse> {
    let principal = state.extensions.authorize(call, OP_STATUS_LIST_HOST, &req.issuer).await?;
    atp_core::did::parse_did_atp(&req.issuer)?;
    let purpose = purpose_from_pb(req.status_purpose, "status_purpose")?;
    let status_size = match req.status_size {
        0 => 1,
        n => u8::try_from(n).map_err(|_| CoreError::StatusListStatusSize { status_size: 255 })?,
    };
    let entries = match req.entries {
        0 => STATUS_LIST_ENTRIES,
        n if n > MAX_HOSTED_LIST_ENTRIES => {
            return Err(ServerError::field(
                "entries",
                format!("at most {MAX_HOSTED_LIST_ENTRIES} entries"),
            ));
        }
        n => n,
    };
    let kel = state
        .load_kel(&req.issuer)
        .await?
        .ok_or_else(|| ServerError::DidNotFound(req.issuer.clone()))?;
    if kel.state.deactivated {
        return Err(ServerError::field("issuer", "the issuer's DID is deactivated"));
    }
    let list_id = format!("ext-{}-{}", purpose.as_str(), hex::encode(random::<8>()?));
    let url = status_list_url(state, &list_id);
    state
        .extensions
        .audit
        .record(&AuditRecord {
            operation: OP_STATUS_LIST_HOST.into(),
            principal: principal.name().to_owned(),
            resource: url.clone(),
            peer: call.peer,
            outcome: "OK".into(),
            at_unix_ms: state.now_ms(),
            detail: format!("issuer {} purpose {}", req.issuer, purpose.as_str()),
        })
        .await?;
    state
        .store
        .create_status_list(NewStatusList {
            list_id,
            issuer: req.issuer.clone(),
            purpose,
            status_size,
            entries,
            allocatable: false,
        })
        .await?;
    Ok(pb::HostStatusListResponse {
        status_list_credential: url,
        controller: req.issuer,
        status_purpose: pb_purpose(purpose),
        status_size: u32::from(status_size),
        entries,
    })
}

/// UpdateStatus with a signed update: the checks of `SignedStatusListUpdate` in
/// credential.proto, in that order, then one atomic store write.
async fn apply_signed_update(
    state: &NodeState,
    signed: pb::SignedStatusListUpdate,
) -> Result<pb::UpdateStatusResponse> {
    let update = StatusListUpdate::parse(&signed.update)?;
    let url = update.status_list_credential.clone();
    let not_found = || {
        ServerError::rejected(
            reasons::STATUS_LIST_NOT_FOUND,
            format!("this node hosts no status list at {url}"),
        )
    };
    let list_id = hosted_list_id(state, &url).ok_or_else(not_found)?.to_owned();
    let record = state.store.get_status_list(&list_id).await?.ok_or_else(not_found)?;
    if record.issuer != update.issuer {
        return Err(ServerError::rejected(
            reasons::STATUS_UPDATE_NOT_ISSUER,
            "the update's issuer does not control this list",
        ));
    }
    let key_not_current =
        |why: &str| ServerError::rejected(reasons::STATUS_UPDATE_KEY_NOT_CURRENT, why.to_owned());
    let kel = state
        .load_kel(&update.issuer)
        .await?
        .ok_or_else(|| key_not_current("this node holds no key event log for the issuer"))?;
    if kel.state.deactivated {
        return Err(key_not_current("the issuer's DID is deactivated"));
    }
    if kel.state.key_sequence != update.issuer_key_seq {
        return Err(key_not_current(&format!(
            "issuer_key_seq {} is not the issuer's current key (established by event {})",
            update.issuer_key_seq, kel.state.key_sequence
        )));
    }
    if record.purpose != update.status_purpose {
        return Err(ServerError::Core(CoreError::StatusListPurposeMismatch {
            purpose: record.purpose.as_str(),
        }));
    }
    let verified =
        status_update::verify_signature(&signed.update, &signed.signature, &kel.state.current_key);
    state.extensions.signature_verified(
        "status_update",
        kel.state.current_key.algorithm().name(),
        verified.is_ok(),
    );
    verified?;
    let latest = state.now_ms().saturating_add(state.limits.clock_skew_ms);
    if update.issued_at_ms > latest {
        return Err(ServerError::Core(CoreError::StatusUpdateMalformed(format!(
            "issued_at {} is later than the node's clock plus the allowed skew",
            update.issued_at_ms
        ))));
    }
    let set = update.changes.iter().filter(|c| c.value != 0).count() as u64;
    let cleared = update.changes.len() as u64 - set;
    let applied = state
        .store
        .apply_status_update(NewSignedStatusUpdate {
            list_id: list_id.clone(),
            issuer: update.issuer.clone(),
            purpose: update.status_purpose,
            update_seq: update.update_seq,
            changes: update.changes.iter().map(|c| (c.index, c.value)).collect(),
            update: signed.update,
            signature: signed.signature,
        })
        .await?;
    state.log_grew.notify_one();
    state.extensions.observer.on_domain_event(&DomainEvent::CredentialStatusChanged {
        list_id: &list_id,
        purpose: update.status_purpose.as_str(),
        set,
        cleared,
        external: true,
    });
    Ok(pb::UpdateStatusResponse {
        status_list_credential: url,
        update_seq: applied.version,
        log_receipt: log_receipt(state, applied.log_index).await?,
    })
}

// ------------------------------------------------------------------------------------------
// The gRPC service
// ------------------------------------------------------------------------------------------

/// `atp.v1.CredentialService` over the shared [`AppState`].
#[derive(Clone, Debug)]
pub struct CredentialApi {
    state: AppState,
}

impl CredentialApi {
    /// The service over `state`.
    pub fn new(state: AppState) -> Self {
        CredentialApi { state }
    }

    /// Report the RPC to the observer (shared with the other services: [`AppState::observe_rpc`]).
    fn observe<T>(&self, method: &str, started: std::time::Instant, r: &Result<T>) {
        self.state.observe_rpc(method, None, started, r);
    }
}

#[tonic::async_trait]
impl CredentialService for CredentialApi {
    async fn issue_credential(
        &self,
        request: Request<pb::IssueCredentialRequest>,
    ) -> std::result::Result<Response<pb::IssueCredentialResponse>, Status> {
        let started = std::time::Instant::now();
        let call = CallInfo::from_grpc("atp.v1.CredentialService/IssueCredential", &request);
        let req = request.into_inner();
        let r = async {
            let purposes = req
                .status_purposes
                .iter()
                .map(|p| purpose_from_pb(*p, "status_purposes"))
                .collect::<Result<Vec<_>>>()?;
            // Authorization comes before parsing: an anonymous caller learns nothing.
            let credential =
                match parse_json(&req.credential_json, MAX_ISSUE_BYTES, "credential_json") {
                    Ok(v) => v,
                    Err(e) => {
                        self.state
                            .extensions
                            .authorize(&call, OP_ISSUE, &self.state.node_did)
                            .await?;
                        return Err(e);
                    }
                };
            let (signed, refs) = issue(&self.state, &call, credential, &purposes).await?;
            Ok(pb::IssueCredentialResponse {
                signed_credential_json: canonical(&signed)?,
                status_entries: refs,
            })
        }
        .await;
        self.observe("atp.v1.CredentialService/IssueCredential", started, &r);
        Ok(Response::new(r?))
    }

    async fn verify_credential(
        &self,
        request: Request<pb::VerifyCredentialRequest>,
    ) -> std::result::Result<Response<pb::VerifyCredentialResponse>, Status> {
        let started = std::time::Instant::now();
        let req = request.into_inner();
        let r = async {
            let policy = proof_policy(req.proof_policy)?;
            let vc_json =
                parse_json(&req.credential_json, MAX_CREDENTIAL_BYTES, "credential_json")?;
            let params =
                VerifyParams { policy, allow_unchecked_status: req.allow_unchecked_status };
            let credential = verify_credential(&self.state, &vc_json, params).await?;
            Ok(pb::VerifyCredentialResponse {
                credential: Some(credential),
                proof_policy: pb_policy(policy),
            })
        }
        .await;
        self.state.extensions.credential_verified("credential", &r);
        self.observe("atp.v1.CredentialService/VerifyCredential", started, &r);
        Ok(Response::new(r?))
    }

    async fn verify_presentation(
        &self,
        request: Request<pb::VerifyPresentationRequest>,
    ) -> std::result::Result<Response<pb::VerifyPresentationResponse>, Status> {
        let started = std::time::Instant::now();
        let req = request.into_inner();
        let r = async {
            let policy = proof_policy(req.proof_policy)?;
            check_challenge_field("challenge", &req.challenge)?;
            check_challenge_field("domain", &req.domain)?;
            let vp_json =
                parse_json(&req.presentation_json, MAX_PRESENTATION_BYTES, "presentation_json")?;
            let params =
                VerifyParams { policy, allow_unchecked_status: req.allow_unchecked_status };
            verify_presentation(&self.state, &vp_json, &req.challenge, &req.domain, params).await
        }
        .await;
        self.state.extensions.credential_verified("presentation", &r);
        self.observe("atp.v1.CredentialService/VerifyPresentation", started, &r);
        Ok(Response::new(r?))
    }

    async fn update_status(
        &self,
        request: Request<pb::UpdateStatusRequest>,
    ) -> std::result::Result<Response<pb::UpdateStatusResponse>, Status> {
        let started = std::time::Instant::now();
        let call = CallInfo::from_grpc("atp.v1.CredentialService/UpdateStatus", &request);
        let req = request.into_inner();
        let r = async {
            match req.update {
                None => Err(ServerError::field(
                    "update",
                    "one of node_issuer or signed_update is required",
                )),
                Some(pb::update_status_request::Update::NodeIssuer(change)) => {
                    update_node_status(&self.state, &call, change).await
                }
                Some(pb::update_status_request::Update::SignedUpdate(signed)) => {
                    apply_signed_update(&self.state, signed).await
                }
            }
        }
        .await;
        self.observe("atp.v1.CredentialService/UpdateStatus", started, &r);
        Ok(Response::new(r?))
    }

    async fn host_status_list(
        &self,
        request: Request<pb::HostStatusListRequest>,
    ) -> std::result::Result<Response<pb::HostStatusListResponse>, Status> {
        let started = std::time::Instant::now();
        let call = CallInfo::from_grpc("atp.v1.CredentialService/HostStatusList", &request);
        let r = host_status_list(&self.state, &call, request.into_inner()).await;
        self.observe("atp.v1.CredentialService/HostStatusList", started, &r);
        Ok(Response::new(r?))
    }

    async fn get_status_list(
        &self,
        request: Request<pb::GetStatusListRequest>,
    ) -> std::result::Result<Response<pb::GetStatusListResponse>, Status> {
        let started = std::time::Instant::now();
        let req = request.into_inner();
        let r = async {
            let not_found = || {
                ServerError::rejected(
                    reasons::STATUS_LIST_NOT_FOUND,
                    format!("this node hosts no status list at {}", req.status_list_credential),
                )
            };
            let list_id =
                hosted_list_id(&self.state, &req.status_list_credential).ok_or_else(not_found)?;
            let (doc, record) = status_list_document(&self.state, list_id).await?;
            Ok(pb::GetStatusListResponse {
                status_list_credential_json: canonical(&doc)?,
                controller: record.issuer,
                status_purpose: pb_purpose(record.purpose),
                update_seq: record.version,
                // The store does not index the latest leaf of a list yet.
                log_receipt: None,
            })
        }
        .await;
        self.observe("atp.v1.CredentialService/GetStatusList", started, &r);
        Ok(Response::new(r?))
    }
}
