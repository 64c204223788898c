//! Calls that ask the node to act: credentials the node issues and whose status it hosts, and
//! the administration of trust anchors. Admin calls need the node's admin token
//! ([`Agent::set_bearer_token`]).

use atp_grpc::v1;
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_grpc::v1::credential_service_client::CredentialServiceClient;
use serde_json::Value;

use crate::agent::Agent;
use crate::error::{Error, Result};

/// The largest credential sent to the node (its documented limit).
const MAX_CREDENTIAL_BYTES: usize = 1 << 20;

/// A credential status purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusPurpose {
    /// Revocation (final).
    Revocation,
    /// Suspension (reversible).
    Suspension,
}

impl StatusPurpose {
    fn proto(self) -> i32 {
        match self {
            StatusPurpose::Revocation => v1::StatusPurpose::Revocation as i32,
            StatusPurpose::Suspension => v1::StatusPurpose::Suspension as i32,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "revocation" => Some(StatusPurpose::Revocation),
            "suspension" => Some(StatusPurpose::Suspension),
            _ => None,
        }
    }
}

/// A change to a credential's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusAction {
    /// Revoke (final).
    Revoke,
    /// Suspend.
    Suspend,
    /// Lift a suspension.
    Reinstate,
}

fn json_bytes(value: &Value) -> Result<Vec<u8>> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    if bytes.len() > MAX_CREDENTIAL_BYTES {
        return Err(Error::InvalidArgument(format!(
            "the credential is {} bytes; the node accepts at most {MAX_CREDENTIAL_BYTES}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn parse_json(op: &'static str, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::misbehaved(op, format!("not JSON: {e}")))
}

impl Agent {
    /// Has the node issue `credential` as its own issuer DID (admin), allocating status entries
    /// for `purposes`. The signed credential is verified locally before it is returned.
    pub async fn node_issue_credential(
        &self,
        credential: &Value,
        purposes: &[StatusPurpose],
    ) -> Result<Value> {
        const OP: &str = "IssueCredential";
        let json = json_bytes(credential)?;
        let purposes: Vec<i32> = purposes.iter().map(|p| p.proto()).collect();
        let node = self.node();
        let response = node
            .call(OP, |ch| {
                let req = node.request(v1::IssueCredentialRequest {
                    credential_json: json.clone(),
                    status_purposes: purposes.clone(),
                });
                async move { CredentialServiceClient::new(ch).issue_credential(req).await }
            })
            .await?;
        let signed = parse_json(OP, &response.signed_credential_json)?;
        self.verify_credential(&signed).await.map_err(|e| {
            Error::misbehaved(OP, format!("the issued credential does not verify: {e}"))
        })?;
        Ok(signed)
    }

    /// Has the node verify a credential, including every `credentialStatus` entry (the
    /// part [`Agent::verify_credential`] cannot do offline). Fails unless it verified.
    pub async fn node_verify_credential(
        &self,
        credential: &Value,
    ) -> Result<v1::VerifyCredentialResponse> {
        let json = json_bytes(credential)?;
        let node = self.node();
        node.call("VerifyCredential", |ch| {
            let req = node.request(v1::VerifyCredentialRequest {
                credential_json: json.clone(),
                proof_policy: 0,
                allow_unchecked_status: false,
            });
            async move { CredentialServiceClient::new(ch).verify_credential(req).await }
        })
        .await
    }

    /// Changes the status of a credential that the node issued (admin), for each of its
    /// `credentialStatus` entries whose purpose fits the action. Returns how many changed.
    pub async fn node_update_status(
        &self,
        credential: &Value,
        action: StatusAction,
    ) -> Result<usize> {
        let wanted = match action {
            StatusAction::Revoke => StatusPurpose::Revocation,
            StatusAction::Suspend | StatusAction::Reinstate => StatusPurpose::Suspension,
        };
        let entries = status_entries(credential)?;
        let mut changed = 0;
        for (url, index, purpose) in entries.into_iter().filter(|e| e.2 == wanted) {
            let action = match action {
                StatusAction::Revoke => v1::StatusAction::Revoke,
                StatusAction::Suspend => v1::StatusAction::Suspend,
                StatusAction::Reinstate => v1::StatusAction::Reinstate,
            } as i32;
            let node = self.node();
            let response = node
                .call("UpdateStatus", |ch| {
                    let req = node.request(v1::UpdateStatusRequest {
                        update: Some(v1::update_status_request::Update::NodeIssuer(
                            v1::NodeIssuerStatusChange {
                                entry: Some(v1::StatusEntryRef {
                                    status_list_credential: url.clone(),
                                    status_list_index: index,
                                    status_purpose: purpose.proto(),
                                }),
                                action,
                            },
                        )),
                    });
                    async move { CredentialServiceClient::new(ch).update_status(req).await }
                })
                .await?;
            if response.log_receipt.is_some() {
                changed += 1;
            }
        }
        if changed == 0 && !status_entries(credential)?.iter().any(|e| e.2 == wanted) {
            return Err(Error::InvalidArgument(format!(
                "the credential has no {wanted:?} status entry"
            )));
        }
        Ok(changed)
    }

    /// Replaces the node's trust anchors (admin). Returns the new revision.
    pub async fn set_trust_anchors(&self, anchors: &[(String, String)]) -> Result<u64> {
        let anchors: Vec<v1::TrustAnchor> = anchors
            .iter()
            .map(|(did, note)| v1::TrustAnchor { did: did.clone(), note: note.clone() })
            .collect();
        let node = self.node();
        let response = node
            .call("SetTrustAnchors", |ch| {
                let req = node.request(v1::SetTrustAnchorsRequest {
                    anchors: anchors.clone(),
                    expected_revision: None,
                });
                async move { AdminServiceClient::new(ch).set_trust_anchors(req).await }
            })
            .await?;
        Ok(response.revision)
    }

    /// The node's trust anchors (admin): `(did, note)` pairs and the revision.
    pub async fn trust_anchors(&self) -> Result<(Vec<(String, String)>, u64)> {
        let node = self.node();
        let response = node
            .call("ListTrustAnchors", |ch| {
                let req = node.request(v1::ListTrustAnchorsRequest {});
                async move { AdminServiceClient::new(ch).list_trust_anchors(req).await }
            })
            .await?;
        Ok((response.anchors.into_iter().map(|a| (a.did, a.note)).collect(), response.revision))
    }

    /// Has the node compute its trust snapshot now and waits for it (admin, or the `operator`
    /// role): when it was computed, its size and how many DIDs are at each level.
    pub async fn recompute_trust(&self) -> Result<v1::RecomputeTrustResponse> {
        let node = self.node();
        node.call("RecomputeTrust", |ch| {
            let req = node.request(v1::RecomputeTrustRequest {});
            async move { AdminServiceClient::new(ch).recompute_trust(req).await }
        })
        .await
    }

    /// Erases a subject's personal data by crypto-shredding (admin): the node destroys the
    /// subject's data key and the trust evidence about it, appends an `erasure` leaf, records
    /// `subject.erased`, and recomputes trust before answering. Idempotent.
    pub async fn erase_subject(&self, subject: &str) -> Result<v1::EraseSubjectResponse> {
        let node = self.node();
        node.call("EraseSubject", |ch| {
            let req = node.request(v1::EraseSubjectRequest { subject: subject.to_owned() });
            async move { AdminServiceClient::new(ch).erase_subject(req).await }
        })
        .await
    }

    /// The trust model's constants the node computes with, its `[trust]` configuration with
    /// the defaults filled in (admin, or the `viewer` and `operator` roles).
    pub async fn trust_config(&self) -> Result<v1::GetTrustConfigResponse> {
        let node = self.node();
        node.call("GetTrustConfig", |ch| {
            let req = node.request(v1::GetTrustConfigRequest {});
            async move { AdminServiceClient::new(ch).get_trust_config(req).await }
        })
        .await
    }

    /// The RBAC role bindings, their revision and the built-in permissions (admin, enterprise
    /// `[rbac]`).
    pub async fn role_bindings(&self) -> Result<v1::ListRoleBindingsResponse> {
        let node = self.node();
        node.call("ListRoleBindings", |ch| {
            let req = node.request(v1::ListRoleBindingsRequest {});
            async move { AdminServiceClient::new(ch).list_role_bindings(req).await }
        })
        .await
    }

    /// Adds RBAC role bindings, all or none (admin, enterprise `[rbac]`).
    pub async fn add_role_bindings(
        &self,
        bindings: Vec<v1::RoleBinding>,
    ) -> Result<v1::AddRoleBindingResponse> {
        let node = self.node();
        node.call("AddRoleBinding", |ch| {
            let req = node.request(v1::AddRoleBindingRequest { bindings: bindings.clone() });
            async move { AdminServiceClient::new(ch).add_role_binding(req).await }
        })
        .await
    }

    /// Removes RBAC role bindings (admin, enterprise `[rbac]`).
    pub async fn remove_role_bindings(
        &self,
        bindings: Vec<v1::RoleBinding>,
    ) -> Result<v1::RemoveRoleBindingResponse> {
        let node = self.node();
        node.call("RemoveRoleBinding", |ch| {
            let req = node.request(v1::RemoveRoleBindingRequest { bindings: bindings.clone() });
            async move { AdminServiceClient::new(ch).remove_role_binding(req).await }
        })
        .await
    }
}

/// `(statusListCredential, statusListIndex, purpose)` of each revocation or suspension entry.
fn status_entries(credential: &Value) -> Result<Vec<(String, u64, StatusPurpose)>> {
    let bad = |why: &str| Error::InvalidArgument(format!("credentialStatus: {why}"));
    let entries: Vec<&Value> = match credential.get("credentialStatus") {
        None => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
    };
    let mut out = Vec::new();
    for e in entries {
        let url = e
            .get("statusListCredential")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no statusListCredential"))?;
        let index = e
            .get("statusListIndex")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("statusListIndex is not a decimal string"))?;
        let purpose = e
            .get("statusPurpose")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no statusPurpose"))?;
        if let Some(p) = StatusPurpose::from_name(purpose) {
            out.push((url.to_owned(), index, p));
        }
    }
    Ok(out)
}
