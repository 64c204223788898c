//! `atp.v1.AdminService`: node information (public), the trust-anchor set (admin only,
//! audited), erasure of a subject (admin only, audited) and the RBAC policy's role bindings (through the authorizer's [`RolePolicy`],
//! kept in the store, audited).
//!
//! Admin calls go through the extension seam: the authenticator names the caller, the
//! authorizer decides (operation `trust_anchors.set` / `trust_anchors.list`, resource `node`),
//! and the audit sink records the action *before* it is performed, so that an action that
//! cannot be audited is not performed.

use std::collections::HashSet;

use atp_grpc::reasons;
use atp_grpc::v1 as pb;
use atp_grpc::v1::admin_service_server::AdminService;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

use crate::audit::target;
use crate::error::{Result, ServerError};
use crate::extensions::{CallInfo, RolePolicy};
use crate::state::AppState;
use atp_core::audit::EventCode;
use atp_store::AuditedWrite;

/// The node-metadata key under which the ordered trust-anchor set, its notes and its revision
/// are kept (the store itself keeps the sorted DIDs and logs each change).
pub const TRUST_ANCHORS_META_KEY: &str = "admin.trust_anchors.v1";

/// The longest trust-anchor note, in bytes.
pub const MAX_NOTE_BYTES: usize = 256;

/// The longest DID, in bytes (proto conventions).
pub const MAX_DID_BYTES: usize = 512;

/// The most role bindings one `AddRoleBinding` or `RemoveRoleBinding` carries.
pub const MAX_BINDINGS_PER_CALL: usize = 1000;

/// The operation of `ListRoleBindings`.
pub const OP_RBAC_BINDINGS_READ: &str = "rbac.bindings.read";

/// The operation of `AddRoleBinding` and `RemoveRoleBinding`.
pub const OP_RBAC_BINDINGS_WRITE: &str = "rbac.bindings.write";

/// The operation of `RecomputeTrust`.
pub const OP_TRUST_RECOMPUTE: &str = "trust.recompute";

/// The operation of `EraseSubject`.
pub const OP_SUBJECT_ERASE: &str = "subject.erase";

/// The operation of `GetTrustConfig`.
pub const OP_TRUST_CONFIG_READ: &str = "trust.config.read";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct AnchorSet {
    revision: u64,
    anchors: Vec<Anchor>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Anchor {
    did: String,
    note: String,
}

/// The AdminService implementation.
#[derive(Debug)]
pub struct AdminServiceImpl {
    state: AppState,
    // Serializes SetTrustAnchors so that the revision check and the write are atomic.
    write: tokio::sync::Mutex<()>,
}

impl AdminServiceImpl {
    /// The service over `state`.
    pub fn new(state: AppState) -> Self {
        AdminServiceImpl { state, write: tokio::sync::Mutex::new(()) }
    }
}

/// The node information (the body of `GetNodeInfo`).
pub fn node_info(state: &AppState) -> Result<pb::GetNodeInfoResponse> {
    let (ed, ml) = crate::checkpointer::verifier_keys(state)?;
    let l = &state.settings.limits;
    Ok(pb::GetNodeInfoResponse {
        node_did: state.node_did.clone(),
        node_version: state.node_version.clone(),
        api_versions: vec!["atp.v1".to_owned()],
        log_origin: state.log_origin.clone(),
        checkpoint_verifier_keys: vec![ed.to_vkey(), ml.to_vkey()],
        edition: pb::NodeEdition::Community as i32,
        features: Vec::new(),
        limits: Some(pb::NodeLimits {
            max_request_bytes: l.max_message_bytes as u64,
            max_page_size: l.max_page_size,
            clock_skew_ms: l.clock_skew_ms(),
            max_envelope_lifetime_ms: l.max_envelope_lifetime_ms(),
            session_token_lifetime_ms: crate::Limits::SESSION_TOKEN_LIFETIME_MS,
        }),
        public_base_url: state.public_base_url.clone(),
    })
}

async fn load_anchors(state: &AppState) -> Result<AnchorSet> {
    match state.store.get_meta(TRUST_ANCHORS_META_KEY).await? {
        None => Ok(AnchorSet::default()),
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| ServerError::internal(format!("stored trust anchors unreadable: {e}"))),
    }
}

fn validate_anchors(anchors: &[pb::TrustAnchor]) -> Result<()> {
    if anchors.len() > atp_store::MAX_TRUST_ANCHORS {
        return Err(ServerError::field(
            "anchors",
            format!("at most {} anchors", atp_store::MAX_TRUST_ANCHORS),
        ));
    }
    let mut seen = HashSet::new();
    for a in anchors {
        if a.did.len() > MAX_DID_BYTES {
            return Err(ServerError::field("anchors.did", "longer than 512 bytes"));
        }
        atp_core::did::method::method_of(&a.did)?;
        if a.note.len() > MAX_NOTE_BYTES {
            return Err(ServerError::field("anchors.note", "longer than 256 bytes"));
        }
        if !seen.insert(a.did.as_str()) {
            return Err(ServerError::field("anchors", format!("duplicate DID {}", a.did)));
        }
    }
    Ok(())
}

impl AdminServiceImpl {
    async fn set_anchors(
        &self,
        call: &CallInfo,
        req: pb::SetTrustAnchorsRequest,
    ) -> Result<pb::SetTrustAnchorsResponse> {
        const OP: &str = "trust_anchors.set";
        let mut admitted = self.state.admit(call, OP, "node").await?;
        validate_anchors(&req.anchors)?;
        let _guard = self.write.lock().await;
        let current = load_anchors(&self.state).await?;
        if let Some(expected) = req.expected_revision
            && expected != current.revision
        {
            return Err(ServerError::rejected(
                reasons::TRUST_ANCHORS_REVISION_MISMATCH,
                format!("the current revision is {}, not {expected}", current.revision),
            ));
        }
        let revision = current.revision + 1;
        let dids: Vec<String> = req.anchors.iter().map(|a| a.did.clone()).collect();
        let mut targets = vec![target("anchors_revision", revision.to_string())];
        targets.extend(dids.iter().map(|did| target("did", did.clone())));
        admitted.record(&self.state, call, EventCode::AnchorsChanged, targets)?;
        let set = AnchorSet {
            revision,
            anchors: req.anchors.into_iter().map(|a| Anchor { did: a.did, note: a.note }).collect(),
        };
        let json = serde_json::to_string(&set).map_err(|e| ServerError::internal(e.to_string()))?;
        // The anchors, their log leaf, the revision metadata and the audit events commit in one
        // transaction.
        let write = AuditedWrite::SetTrustAnchors {
            anchors: dids,
            meta: Some((TRUST_ANCHORS_META_KEY.to_owned(), json)),
        };
        let leaf_index =
            self.state.write_audited(write, admitted.into_trail()).await?.anchors_set()?;
        self.state.log_grew.notify_one();
        let entry = self.state.store.get_entries(leaf_index, 1).await?;
        let leaf_hash = entry.first().map(|e| e.leaf_hash.to_vec()).unwrap_or_default();
        Ok(pb::SetTrustAnchorsResponse {
            revision,
            log_receipt: Some(pb::LogReceipt { leaf_index, leaf_hash }),
        })
    }

    async fn list_anchors(&self, call: &CallInfo) -> Result<pb::ListTrustAnchorsResponse> {
        const OP: &str = "trust_anchors.list";
        self.admin_read(call, OP).await?;
        let set = load_anchors(&self.state).await?;
        Ok(pb::ListTrustAnchorsResponse {
            anchors: set
                .anchors
                .into_iter()
                .map(|a| pb::TrustAnchor { did: a.did, note: a.note })
                .collect(),
            revision: set.revision,
        })
    }
}

impl AdminServiceImpl {
    /// Admits an admin call that changes nothing in the store, and records it before it runs.
    async fn admin_read(&self, call: &CallInfo, operation: &str) -> Result<()> {
        let mut admitted = self.state.admit(call, operation, "node").await?;
        let targets = vec![target("operation", operation)];
        admitted.record(&self.state, call, EventCode::AdminAction, targets)?;
        self.state.store_trail(admitted.into_trail()).await
    }

    fn role_policy(&self) -> Result<&dyn RolePolicy> {
        self.state
            .extensions
            .authorizer
            .role_policy()
            .ok_or_else(|| ServerError::EnterpriseRequired { feature: "rbac".to_owned() })
    }

    async fn list_bindings(&self, call: &CallInfo) -> Result<pb::ListRoleBindingsResponse> {
        let policy = self.role_policy()?;
        self.admin_read(call, OP_RBAC_BINDINGS_READ).await?;
        let stored = self.state.store.list_role_bindings().await?;
        Ok(pb::ListRoleBindingsResponse {
            bindings: stored
                .bindings
                .into_iter()
                .map(|b| pb::RoleBinding { subject: b.subject, role: b.role, domain: b.domain })
                .collect(),
            revision: stored.revision,
            permissions: policy
                .permissions()
                .into_iter()
                .map(|[role, domain, object, action]| pb::RolePermission {
                    role,
                    domain,
                    object,
                    action,
                })
                .collect(),
        })
    }

    /// Checks every binding before anything is audited or stored; the store writes all of
    /// them in one transaction; the policy reloads before this call returns, so that the next
    /// call on this node sees the change.
    async fn change_bindings(
        &self,
        call: &CallInfo,
        bindings: Vec<pb::RoleBinding>,
        add: bool,
    ) -> Result<atp_store::RoleBindingChange> {
        let mut admitted = self.state.admit(call, OP_RBAC_BINDINGS_WRITE, "node").await?;
        let policy = self.role_policy()?;
        if bindings.is_empty() {
            return Err(ServerError::field("bindings", "at least one binding"));
        }
        if bindings.len() > MAX_BINDINGS_PER_CALL {
            return Err(ServerError::field(
                "bindings",
                format!("at most {MAX_BINDINGS_PER_CALL} bindings per call"),
            ));
        }
        let bindings: Vec<atp_store::RoleBinding> = bindings
            .into_iter()
            .map(|b| atp_store::RoleBinding { subject: b.subject, role: b.role, domain: b.domain })
            .collect();
        for b in &bindings {
            policy.check_binding(b)?;
        }
        let mut targets = vec![target("change", if add { "add" } else { "remove" })];
        // The event keeps the first bindings and counts the rest (crate::audit's bounds).
        targets.extend(
            bindings
                .iter()
                .map(|b| target("role_binding", format!("{} {} {}", b.subject, b.role, b.domain))),
        );
        admitted.record(&self.state, call, EventCode::RoleBindingsChanged, targets)?;
        let write = if add {
            AuditedWrite::AddRoleBindings(bindings)
        } else {
            AuditedWrite::RemoveRoleBindings(bindings)
        };
        let change =
            self.state.write_audited(write, admitted.into_trail()).await?.role_bindings()?;
        if change.changed > 0 {
            policy.bindings_changed(change.revision).await?;
        }
        Ok(change)
    }

    async fn recompute_snapshot(&self, call: &CallInfo) -> Result<pb::RecomputeTrustResponse> {
        // Audit is fail-closed: a computation nobody could account for does not start.
        self.admin_read(call, OP_TRUST_RECOMPUTE).await?;
        let started = std::time::Instant::now();
        let snapshot = crate::trust_job::recompute_and_share(&self.state).await?;
        Ok(pb::RecomputeTrustResponse {
            computed_at_unix_ms: snapshot.computed_at_ms(),
            agents: snapshot.node_count() as u64,
            edges: snapshot.edge_count() as u64,
            iterations: snapshot.iterations(),
            level_counts: snapshot.level_counts().to_vec(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Erases in one audited store write, then recomputes the trust snapshot so that the answer
    /// means the erased evidence no longer counts. A failed recomputation fails the call; the
    /// erasure stands, and calling again (idempotent) recomputes again.
    async fn erase_subject(
        &self,
        call: &CallInfo,
        req: pb::EraseSubjectRequest,
    ) -> Result<pb::EraseSubjectResponse> {
        let mut admitted = self.state.admit(call, OP_SUBJECT_ERASE, "node").await?;
        if req.subject.len() > MAX_DID_BYTES {
            return Err(ServerError::field("subject", "longer than 512 bytes"));
        }
        atp_core::did::validate_did(&req.subject)?;
        let targets = vec![target("did", req.subject.clone())];
        admitted.record(&self.state, call, EventCode::SubjectErased, targets)?;
        let write = AuditedWrite::EraseSubject { subject: req.subject };
        let erasure = self.state.write_audited(write, admitted.into_trail()).await?.erased()?;
        if !erasure.already_erased {
            self.state.log_grew.notify_one();
        }
        crate::trust_job::recompute_and_share(&self.state).await?;
        let entry = self.state.store.get_entries(erasure.log_index, 1).await?;
        let leaf_hash = entry.first().map(|e| e.leaf_hash.to_vec()).unwrap_or_default();
        Ok(pb::EraseSubjectResponse {
            subject: erasure.subject,
            erased_at_unix_ms: erasure.erased_at_ms,
            evidence_erased: erasure.evidence_erased,
            already_erased: erasure.already_erased,
            log_receipt: Some(pb::LogReceipt { leaf_index: erasure.log_index, leaf_hash }),
        })
    }

    async fn trust_config(&self, call: &CallInfo) -> Result<pb::GetTrustConfigResponse> {
        self.admin_read(call, OP_TRUST_CONFIG_READ).await?;
        let settings = &self.state.settings;
        let m = &self.state.trust.config;
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let small = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(pb::GetTrustConfigResponse {
            recompute_interval_ms: ms(settings.trust_recompute_interval),
            proof_ttl_ms: settings.trust_proof_ttl_secs.saturating_mul(1000),
            damping: m.damping,
            max_iterations: m.max_iterations,
            tolerance: m.tolerance,
            half_life_ms: m.half_life_ms,
            endorsement_weight: m.endorsement_weight,
            receipt_weight: m.receipt_weight,
            credential_weight: m.credential_weight,
            incident_weights: m.incident_weights.to_vec(),
            negative_multiplier: m.negative_multiplier,
            issuer_prior_weight: m.issuer_prior_weight,
            score_half_units: m.score_half_units,
            level_thresholds: m.level_thresholds.to_vec(),
            incident_open_ms: m.incident_open_ms,
            incident_reporter_min_level: u32::from(m.incident_reporter_min_level),
            explain_max_depth: small(m.explain_max_depth),
            explain_max_steps: small(m.explain_max_steps),
        })
    }
}

#[tonic::async_trait]
impl AdminService for AdminServiceImpl {
    async fn recompute_trust(
        &self,
        request: Request<pb::RecomputeTrustRequest>,
    ) -> std::result::Result<Response<pb::RecomputeTrustResponse>, Status> {
        const METHOD: &str = "atp.v1.AdminService/RecomputeTrust";
        let call = CallInfo::from_grpc(METHOD, &request);
        let r = self.recompute_snapshot(&call).await;
        Ok(Response::new(r?))
    }

    async fn get_trust_config(
        &self,
        request: Request<pb::GetTrustConfigRequest>,
    ) -> std::result::Result<Response<pb::GetTrustConfigResponse>, Status> {
        const METHOD: &str = "atp.v1.AdminService/GetTrustConfig";
        let call = CallInfo::from_grpc(METHOD, &request);
        let r = self.trust_config(&call).await;
        Ok(Response::new(r?))
    }

    async fn erase_subject(
        &self,
        request: Request<pb::EraseSubjectRequest>,
    ) -> std::result::Result<Response<pb::EraseSubjectResponse>, Status> {
        const METHOD: &str = "atp.v1.AdminService/EraseSubject";
        let call = CallInfo::from_grpc(METHOD, &request);
        let r = self.erase_subject(&call, request.into_inner()).await;
        Ok(Response::new(r?))
    }

    async fn get_node_info(
        &self,
        _request: Request<pb::GetNodeInfoRequest>,
    ) -> std::result::Result<Response<pb::GetNodeInfoResponse>, Status> {
        let r = node_info(&self.state);
        Ok(Response::new(r?))
    }

    async fn set_trust_anchors(
        &self,
        request: Request<pb::SetTrustAnchorsRequest>,
    ) -> std::result::Result<Response<pb::SetTrustAnchorsResponse>, Status> {
        const METHOD: &str = "atp.v1.AdminService/SetTrustAnchors";
        let call = CallInfo::from_grpc(METHOD, &request);
        let r = self.set_anchors(&call, request.into_inner()).await;
        Ok(Response::new(r?))
    }

    async fn list_trust_anchors(
        &self,
        request: Request<pb::ListTrustAnchorsRequest>,
    ) -> std::result::Result<Response<pb::ListTrustAnchorsResponse>, Status> {
        const METHOD: &str = "atp.v1.AdminService/ListTrustAnchors";
        let call = CallInfo::from_grpc(METHOD, &request);
        let r = self.list_anchors(&call).await;
        Ok(Response::new(r?))
    }

    async fn list_role_bindings(
        &self,
        request: Request<pb::ListRoleBindingsRequest>,
    ) -> std::result::Result<Response<pb::ListRoleBindingsResponse>, Status> {
        const METHOD: &str = "atp.v1.AdminService/ListRoleBindings";
        let call = CallInfo::from_grpc(METHOD, &request);
        let r = self.list_bindings(&call).await;
        Ok(Response::new(r?))
    }

    async fn add_role_binding(
        &self,
        request: Request<pb::AddRoleBindingRequest>,
    ) -> std::result::Result<Response<pb::AddRoleBindingResponse>, Status> {
        const METHOD: &str = "atp.v1.AdminService/AddRoleBinding";
        let call = CallInfo::from_grpc(METHOD, &request);
        let r = self
            .change_bindings(&call, request.into_inner().bindings, true)
            .await
            .map(|c| pb::AddRoleBindingResponse { added: c.changed, revision: c.revision });
        Ok(Response::new(r?))
    }

    async fn remove_role_binding(
        &self,
        request: Request<pb::RemoveRoleBindingRequest>,
    ) -> std::result::Result<Response<pb::RemoveRoleBindingResponse>, Status> {
        const METHOD: &str = "atp.v1.AdminService/RemoveRoleBinding";
        let call = CallInfo::from_grpc(METHOD, &request);
        let r = self
            .change_bindings(&call, request.into_inner().bindings, false)
            .await
            .map(|c| pb::RemoveRoleBindingResponse { removed: c.changed, revision: c.revision });
        Ok(Response::new(r?))
    }
}
