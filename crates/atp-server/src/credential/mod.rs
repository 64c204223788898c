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

use crate::audit::{Trail, target};
use crate::error::{Result, ServerError};
use crate::extensions::{CallInfo, DomainEvent, Extensions, Principal};
use crate::state::{AppState, NodeState};
use atp_core::audit::EventCode;
use atp_store::AuditedWrite;

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

pub(crate) mod common;
mod issue;
mod status;
mod verify;

use common::*;
pub(crate) use common::{hosted_list_id, parse_json};
pub(crate) use issue::{issue_admitted, sign_as_node};
pub(crate) use status::status_list_document;
use status::*;
use verify::check_challenge_field;
pub(crate) use verify::{VerifyParams, verify_credential, verify_presentation};
pub use verify::{WARNING_ISSUER_NOT_BOUND, WARNING_STATUS_UNCHECKED};

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
}

#[tonic::async_trait]
impl CredentialService for CredentialApi {
    async fn issue_credential(
        &self,
        request: Request<pb::IssueCredentialRequest>,
    ) -> std::result::Result<Response<pb::IssueCredentialResponse>, Status> {
        let call = CallInfo::from_grpc("atp.v1.CredentialService/IssueCredential", &request);
        let req = request.into_inner();
        let r = async {
            let purposes = req
                .status_purposes
                .iter()
                .map(|p| purpose_from_pb(*p, "status_purposes"))
                .collect::<Result<Vec<_>>>()?;
            // Admission (recorded) comes before parsing: an anonymous caller learns nothing.
            let admitted = self.state.admit(&call, OP_ISSUE, &self.state.node_did).await?;
            let credential = parse_json(&req.credential_json, MAX_ISSUE_BYTES, "credential_json")?;
            let (signed, refs) =
                issue_admitted(&self.state, &call, admitted, credential, &purposes).await?;
            Ok::<_, ServerError>(pb::IssueCredentialResponse {
                signed_credential_json: canonical(&signed)?,
                status_entries: refs,
            })
        }
        .await;
        Ok(Response::new(r?))
    }

    async fn verify_credential(
        &self,
        request: Request<pb::VerifyCredentialRequest>,
    ) -> std::result::Result<Response<pb::VerifyCredentialResponse>, Status> {
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
        Ok(Response::new(r?))
    }

    async fn verify_presentation(
        &self,
        request: Request<pb::VerifyPresentationRequest>,
    ) -> std::result::Result<Response<pb::VerifyPresentationResponse>, Status> {
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
        Ok(Response::new(r?))
    }

    async fn update_status(
        &self,
        request: Request<pb::UpdateStatusRequest>,
    ) -> std::result::Result<Response<pb::UpdateStatusResponse>, Status> {
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
                    apply_signed_update(&self.state, &call, signed).await
                }
            }
        }
        .await;
        Ok(Response::new(r?))
    }

    async fn host_status_list(
        &self,
        request: Request<pb::HostStatusListRequest>,
    ) -> std::result::Result<Response<pb::HostStatusListResponse>, Status> {
        let call = CallInfo::from_grpc("atp.v1.CredentialService/HostStatusList", &request);
        let r = host_status_list(&self.state, &call, request.into_inner()).await;
        Ok(Response::new(r?))
    }

    async fn get_status_list(
        &self,
        request: Request<pb::GetStatusListRequest>,
    ) -> std::result::Result<Response<pb::GetStatusListResponse>, Status> {
        let req = request.into_inner();
        let r: Result<pb::GetStatusListResponse> = async {
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
        Ok(Response::new(r?))
    }
}
