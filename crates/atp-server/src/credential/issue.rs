//! Issuing: the node signs as its own DID, after allocating status entries.

use super::common::*;
use super::*;

// Issuing
// ------------------------------------------------------------------------------------------

/// Issues `credential` (unsigned JSON) as the node, for a call already admitted for
/// [`OP_ISSUE`] (both routes admit before they read the credential), and records it before the
/// signed credential is returned.
pub(crate) async fn issue_admitted(
    state: &NodeState,
    call: &CallInfo,
    mut admitted: crate::audit::Admitted,
    credential: Value,
    purposes: &[StatusPurpose],
) -> Result<(Value, Vec<pb::StatusEntryRef>)> {
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
    let mut targets = Vec::new();
    if let Some(id) = obj.get("id").and_then(Value::as_str) {
        targets.push(target("credential", id));
    }
    targets.extend(refs.iter().map(|r| {
        target("status_entry", format!("{}#{}", r.status_list_credential, r.status_list_index))
    }));
    let signed = sign_as_node(state, &Value::Object(obj))?;
    // Stored before the credential is handed out: an issuance that cannot be recorded does not
    // reach the caller (its status entries, if any, stay allocated and unused).
    admitted.record(state, call, EventCode::CredentialIssued, targets)?;
    state.store_trail(admitted.into_trail()).await?;
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

pub(super) async fn allocate(
    state: &NodeState,
    purpose: StatusPurpose,
) -> Result<atp_store::StatusSlot> {
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
