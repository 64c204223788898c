//! Helpers shared by the credential sections, and the two that the trust service reads
//! (status entries, hosted lists). A leaf: it imports no other section, and no service.

use super::*;

// ------------------------------------------------------------------------------------------
// Small helpers
// ------------------------------------------------------------------------------------------

pub(super) fn security(kind: ProofErrorKind, reason: impl Into<String>) -> CoreError {
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

pub(super) fn now_secs(state: &NodeState) -> i64 {
    state.now_ms().div_euclid(1000)
}

pub(super) fn random<const N: usize>() -> Result<[u8; N]> {
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

pub(super) fn pb_policy(p: ProofPolicy) -> i32 {
    match p {
        ProofPolicy::Any => pb::ProofPolicy::Any as i32,
        _ => pb::ProofPolicy::QuantumSafe as i32,
    }
}

pub(super) fn pb_purpose(p: StatusPurpose) -> i32 {
    match p {
        StatusPurpose::Revocation => pb::StatusPurpose::Revocation as i32,
        StatusPurpose::Suspension => pb::StatusPurpose::Suspension as i32,
        StatusPurpose::Message => pb::StatusPurpose::Message as i32,
    }
}

pub(super) fn purpose_from_pb(value: i32, field: &str) -> Result<StatusPurpose> {
    match pb::StatusPurpose::try_from(value) {
        Ok(pb::StatusPurpose::Revocation) => Ok(StatusPurpose::Revocation),
        Ok(pb::StatusPurpose::Suspension) => Ok(StatusPurpose::Suspension),
        Ok(pb::StatusPurpose::Message) => Ok(StatusPurpose::Message),
        _ => Err(ServerError::field(field, format!("not a status purpose: {value}"))),
    }
}

/// The URL prefix of the node's status lists: `<base>/status/`.
pub(super) fn status_prefix(state: &NodeState) -> String {
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

pub(super) fn canonical(value: &Value) -> Result<Vec<u8>> {
    Ok(atp_core::jcs::canonicalize(value)?)
}

pub(super) async fn log_receipt(state: &NodeState, index: u64) -> Result<Option<pb::LogReceipt>> {
    let entries = state.store.get_entries(index, 1).await?;
    Ok(entries
        .into_iter()
        .find(|e| e.index == index)
        .map(|e| pb::LogReceipt { leaf_index: e.index, leaf_hash: e.leaf_hash.to_vec() }))
}

pub(crate) fn status_entries(vc_json: &Value) -> Vec<&Value> {
    match vc_json.get("credentialStatus") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    }
}
