//! Status lists: the node's own lists, lists hosted for external issuers, signed updates.

use super::common::*;
use super::*;

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

pub(super) async fn update_node_status(
    state: &NodeState,
    call: &CallInfo,
    change: pb::NodeIssuerStatusChange,
) -> Result<pb::UpdateStatusResponse> {
    let entry = change.entry.ok_or_else(|| ServerError::field("entry", "is required"))?;
    let mut admitted = state.admit(call, OP_STATUS_UPDATE, &entry.status_list_credential).await?;
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
    let targets = vec![
        target("status_entry", format!("{}#{index}", entry.status_list_credential)),
        target("action", action.as_str_name()),
    ];
    admitted.record(state, call, EventCode::CredentialStatusChanged, targets)?;
    let write = AuditedWrite::SetStatus { list_id: list_id.to_owned(), index, value };
    let update = state.write_audited(write, admitted.into_trail()).await?.status()?;
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
pub(super) async fn host_status_list(
    state: &NodeState,
    call: &CallInfo,
    req: pb::HostStatusListRequest,
) -> Result<pb::HostStatusListResponse> {
    let mut admitted = state.admit(call, OP_STATUS_LIST_HOST, &req.issuer).await?;
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
        .load_kel_exact(&req.issuer)
        .await?
        .ok_or_else(|| ServerError::DidNotFound(req.issuer.clone()))?;
    if kel.state.deactivated {
        return Err(ServerError::field("issuer", "the issuer's DID is deactivated"));
    }
    let list_id = format!("ext-{}-{}", purpose.as_str(), hex::encode(random::<8>()?));
    let url = status_list_url(state, &list_id);
    let targets = vec![target("status_list", url.clone()), target("did", req.issuer.clone())];
    admitted.record(state, call, EventCode::AdminAction, targets)?;
    let list = NewStatusList {
        list_id,
        issuer: req.issuer.clone(),
        purpose,
        status_size,
        entries,
        allocatable: false,
    };
    state.write_audited(AuditedWrite::CreateStatusList(list), admitted.into_trail()).await?;
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
pub(super) async fn apply_signed_update(
    state: &NodeState,
    call: &CallInfo,
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
    // Exact: an update is stored for good, so a key rotated away must not sign one.
    let kel = state
        .load_kel_exact(&update.issuer)
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
    let latest = state.now_ms().saturating_add(state.settings.limits.clock_skew_ms());
    if update.issued_at_ms > latest {
        return Err(ServerError::Core(CoreError::StatusUpdateMalformed(format!(
            "issued_at {} is later than the node's clock plus the allowed skew",
            update.issued_at_ms
        ))));
    }
    let set = update.changes.iter().filter(|c| c.value != 0).count() as u64;
    let cleared = update.changes.len() as u64 - set;
    // The issuer's own signature is the authority here: the event names the issuer as actor.
    let issuer = Principal::User { id: update.issuer.clone(), roles: Vec::new() };
    let targets = vec![
        target("status_list", url.clone()),
        target("update_seq", update.update_seq.to_string()),
    ];
    let event = state.audit_event(
        call,
        Some(&issuer),
        EventCode::StatusUpdateApplied,
        targets,
        atp_core::audit::Outcome { result: "SUCCESS".into(), reason: None },
        Some("status.update.signed"),
    )?;
    let mut trail = Trail::default();
    state.push_audit(&mut trail, &event)?;
    let write = AuditedWrite::ApplyStatusUpdate(NewSignedStatusUpdate {
        list_id: list_id.clone(),
        issuer: update.issuer.clone(),
        purpose: update.status_purpose,
        update_seq: update.update_seq,
        changes: update.changes.iter().map(|c| (c.index, c.value)).collect(),
        update: signed.update,
        signature: signed.signature,
    });
    let applied = state.write_audited(write, trail).await?.status_update_applied()?;
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
