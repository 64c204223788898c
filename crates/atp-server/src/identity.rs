//! `atp.v1.IdentityService`: key event submission, DID resolution, key event logs, listing.
//!
//! `SubmitEvent` verifies an event completely against the stored log with
//! [`atp_core::kel::KeyEventLog`] before anything is stored, then appends it conditionally on
//! the head it verified against ([`atp_store::Store::append_kel_event`]). A writer that lost a
//! race re-reads and re-verifies, so two submissions can never fork a stored log. A validly
//! signed event that conflicts with a stored one is a fork: its evidence is stored (and
//! logged) and the call fails with `KEL_FORK`.

use atp_core::CoreError;
use atp_core::did;
use atp_core::did::method::{Material, Needs};
use atp_core::kel::{self, DID_ATP_PREFIX, ForkCheck, SignedEvent};
use atp_core::log_entry::{LeafKind, entry_leaf_hash, evidence_data_hash, kel_data_hash};
use atp_grpc::v1 as pb;
use atp_grpc::v1::identity_service_server::IdentityService;
use atp_store::{NewEvidence, StoreError, StoredEvent};
use tonic::{Request, Response, Status};

use crate::audit::{Trail, target};
use crate::error::{Result, ServerError};
use crate::extensions::{CallInfo, DomainEvent, Principal};
use crate::state::AppState;
use atp_core::audit::{EventCode, Outcome};
use atp_store::AuditedWrite;

/// The largest `signed_event_json` accepted (proto: 262 144 bytes), checked before parsing.
pub const MAX_SUBMIT_BYTES: usize = 262_144;

/// How often a submission re-reads and re-verifies after losing a race, before giving up
/// with `UNAVAILABLE`.
const MAX_ATTEMPTS: usize = 4;

/// The evidence type of a recorded fork.
pub const KEL_FORK_EVIDENCE: &str = "kel-fork";

/// The IdentityService implementation.
#[derive(Clone, Debug)]
pub struct IdentityServiceImpl {
    state: AppState,
}

impl IdentityServiceImpl {
    /// The service over `state`.
    pub fn new(state: AppState) -> Self {
        IdentityServiceImpl { state }
    }
}

/// The transparency-log receipt of a stored event.
pub fn receipt(event: &SignedEvent, leaf_index: u64) -> Result<pb::LogReceipt> {
    let data = kel_data_hash(event)?;
    Ok(pb::LogReceipt { leaf_index, leaf_hash: entry_leaf_hash(LeafKind::Kel, &data).to_vec() })
}

fn key_event(e: &StoredEvent) -> Result<pb::KeyEvent> {
    Ok(pb::KeyEvent {
        sequence: e.sequence,
        signed_event_json: e.event.canonical_bytes()?,
        event_digest: e.digest.clone(),
        log_receipt: Some(receipt(&e.event, e.log_index)?),
    })
}

/// The DID an event belongs to: derived from an inception, named by `d` otherwise.
fn event_did(event: &SignedEvent) -> Result<String> {
    if event.event.s == 0 {
        return Ok(format!("{DID_ATP_PREFIX}{}", event.event.scid()?));
    }
    match &event.event.d {
        Some(d) => {
            did::parse_did_atp(d)?;
            Ok(d.clone())
        }
        None => Err(CoreError::KelMalformed {
            index: usize::try_from(event.event.s).unwrap_or(usize::MAX),
            reason: "a non-inception event must name its DID in `d`".into(),
        }
        .into()),
    }
}

/// The prefix of the page tokens this node issues (`v1.` + the store's keyset cursor, the
/// last DID of the previous page).
const PAGE_TOKEN_PREFIX: &str = "v1.";

fn page_token_invalid() -> ServerError {
    ServerError::rejected(
        atp_grpc::reasons::PAGE_TOKEN_INVALID,
        "the page token is not one this node issued",
    )
}

/// The store cursor in a page token: `None` for the first page.
fn parse_page_token(token: &str) -> Result<Option<&str>> {
    if token.is_empty() {
        return Ok(None);
    }
    let cursor = token.strip_prefix(PAGE_TOKEN_PREFIX).ok_or_else(page_token_invalid)?;
    did::parse_did_atp(cursor).map_err(|_| page_token_invalid())?;
    Ok(Some(cursor))
}

/// Verifies and stores one signed event (the body of `SubmitEvent`).
///
/// The accepted event is stored with its `key_event.accepted` audit event (actor: the DID that
/// signed it), in one transaction.
pub async fn submit_event(
    state: &AppState,
    call: &CallInfo,
    json: &[u8],
) -> Result<pb::SubmitEventResponse> {
    if json.len() > MAX_SUBMIT_BYTES {
        return Err(CoreError::KelLimit {
            what: "event bytes",
            limit: MAX_SUBMIT_BYTES,
            actual: json.len(),
        }
        .into());
    }
    let incoming = SignedEvent::from_json(json)?;
    let did = event_did(&incoming)?;
    let verifier = &state.kel_verifier;

    for _ in 0..MAX_ATTEMPTS {
        // Core's accept is the one judge of the append; the accepted event carries the bytes,
        // digest and data hash the store writes and the receipt names (computed once).
        // Judged against the exact head: a log another node just extended must not be seen
        // as shorter (the store's compare-and-append would refuse a stale append anyway).
        let accepted = match state.load_kel_exact(&did).await? {
            None => {
                if incoming.event.s != 0 {
                    return Err(ServerError::DidNotFound(did));
                }
                kel::check_not_after(&incoming, latest_event_time(state))?;
                let accepted = verifier.accept(&did, None, incoming.clone());
                observe_signature(state, &incoming, accepted.as_ref().map(|_| ()));
                accepted?
            }
            Some(kel) => {
                let log: Vec<SignedEvent> = kel.events.iter().map(|e| e.event.clone()).collect();
                match verifier.detect_fork(&log, &incoming) {
                    Ok(ForkCheck::New) => {}
                    Ok(ForkCheck::Duplicate) => {
                        let index = usize::try_from(incoming.event.s).unwrap_or(usize::MAX);
                        let stored = kel.events.get(index).ok_or_else(|| {
                            ServerError::internal("duplicate event missing from the log")
                        })?;
                        return Ok(pb::SubmitEventResponse {
                            did,
                            sequence: stored.sequence,
                            event_digest: stored.digest.clone(),
                            outcome: pb::SubmitEventOutcome::Duplicate as i32,
                            log_receipt: Some(receipt(&stored.event, stored.log_index)?),
                        });
                    }
                    Err(CoreError::KelFork { sequence, existing_digest, incoming_digest }) => {
                        record_fork(state, &did, &log, &incoming, sequence).await?;
                        return Err(CoreError::KelFork {
                            sequence,
                            existing_digest,
                            incoming_digest,
                        }
                        .into());
                    }
                    Err(e) => return Err(e.into()),
                }
                kel::check_not_after(&incoming, latest_event_time(state))?;
                let accepted = verifier.accept(&did, Some(&kel.state), incoming.clone());
                observe_signature(state, &incoming, accepted.as_ref().map(|_| ()));
                accepted?
            }
        };
        let leaf_hash = accepted.leaf_hash();
        let signer = Principal::User { id: did.clone(), roles: Vec::new() };
        let targets = vec![
            target("did", did.clone()),
            target("sequence", incoming.event.s.to_string()),
            target("event_type", incoming.event.t.as_str()),
        ];
        let event = state.audit_event(
            call,
            Some(&signer),
            EventCode::KeyEventAccepted,
            targets,
            Outcome { result: "SUCCESS".into(), reason: None },
            Some("identity.submit_event"),
        )?;
        let mut trail = Trail::default();
        state.push_audit(&mut trail, &event)?;
        let written = state.write_audited(AuditedWrite::AppendKel(Box::new(accepted)), trail).await;
        match written.and_then(|w| Ok(w.appended()?)) {
            Ok(appended) => {
                state.caches.kel.invalidate(&did);
                state.log_grew.notify_one();
                state.extensions.observer.on_domain_event(&DomainEvent::KelEventAccepted {
                    did: &did,
                    sequence: appended.sequence,
                    log_index: appended.log_index,
                    event_type: incoming.event.t.as_str(),
                });
                return Ok(pb::SubmitEventResponse {
                    did,
                    sequence: appended.sequence,
                    event_digest: appended.digest,
                    outcome: pb::SubmitEventOutcome::Accepted as i32,
                    log_receipt: Some(pb::LogReceipt {
                        leaf_index: appended.log_index,
                        leaf_hash: leaf_hash.to_vec(),
                    }),
                });
            }
            Err(ServerError::Store(StoreError::Conflict { .. })) => {
                // Lost a race: re-read the log and verify again.
                state.caches.kel.invalidate(&did);
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    Err(ServerError::Unavailable(format!("the key event log of {did} is changing too fast; retry")))
}

/// The latest `ts` a new event may carry: the node's clock plus the allowed skew (checked only
/// for events that would be appended, so a replayed or forking event is judged as before).
fn latest_event_time(state: &AppState) -> i64 {
    state.now_ms().saturating_add(state.settings.limits.clock_skew_ms())
}

/// Reports the signature check of `incoming`: the event is signed by the key it carries and the
/// verifier checks the signature last, so success means it verified and `KEL_BAD_SIGNATURE` that
/// it did not; other refusals never reached the signature and are not counted.
fn observe_signature(
    state: &AppState,
    incoming: &SignedEvent,
    verified: std::result::Result<(), &CoreError>,
) {
    let ok = match verified {
        Ok(_) => true,
        Err(CoreError::KelBadSignature { .. }) => false,
        Err(_) => return,
    };
    let algorithm =
        incoming.event.k.as_ref().and_then(|k| atp_crypto::AlgorithmId::from_name(&k.alg).ok());
    if let Some(algorithm) = algorithm {
        state.extensions.signature_verified("key_event", algorithm.name(), ok);
    }
}

/// Stores the evidence of a fork: both signed events, in JCS form.
async fn record_fork(
    state: &AppState,
    did: &str,
    log: &[SignedEvent],
    incoming: &SignedEvent,
    sequence: u64,
) -> Result<()> {
    let existing = usize::try_from(sequence)
        .ok()
        .and_then(|i| log.get(i))
        .ok_or_else(|| ServerError::internal("forked event missing from the log"))?;
    let value = |e: &SignedEvent| -> Result<serde_json::Value> {
        serde_json::to_value(e).map_err(|e| ServerError::internal(e.to_string()))
    };
    let body = serde_json::json!({
        "type": KEL_FORK_EVIDENCE,
        "did": did,
        "sequence": sequence,
        "existing": value(existing)?,
        "incoming": value(incoming)?,
    });
    let body = atp_core::jcs::canonicalize(&body)?;
    // The same fork submitted again is already on record (the body is canonical, so its leaf
    // is the same): a replay must not grow the log. Two identical forks racing each other may
    // both be recorded; that costs one extra leaf, never a lost record.
    let leaf = entry_leaf_hash(LeafKind::Evidence, &evidence_data_hash(&body));
    if let Some(index) = state.store.find_leaf(&leaf).await? {
        tracing::debug!(%did, sequence, log_index = index, "key event log fork already on record");
        return Ok(());
    }
    let index = state
        .store
        .append_evidence(NewEvidence {
            subject: did.to_owned(),
            evidence_type: KEL_FORK_EVIDENCE.to_owned(),
            body,
        })
        .await?;
    state.log_grew.notify_one();
    tracing::warn!(%did, sequence, log_index = index, "key event log fork detected; evidence stored");
    state.extensions.observer.on_domain_event(&DomainEvent::KelForkDetected { did, sequence });
    Ok(())
}

/// Resolves a DID (the body of `Resolve`).
pub async fn resolve(
    state: &AppState,
    did: &str,
    version: Option<u64>,
) -> Result<pb::ResolveResponse> {
    if did.is_empty() {
        return Err(ServerError::field("did", "required"));
    }
    let method = did::method::method_of(did)?;
    if method.needs() == Needs::Nothing {
        if version.is_some() {
            return Err(ServerError::field(
                "version_id",
                format!("a did:{} has no versions", method.name()),
            ));
        }
        return response(&method.resolve(did, Material::Nothing)?, None);
    }
    // The verified log comes from the node's cache, so a resolution re-verifies no signature
    // unless the log changed; the latest version's answer is kept with the cached log.
    let kel = state.load_kel(did).await?.ok_or_else(|| ServerError::DidNotFound(did.to_owned()))?;
    let latest = kel.state.sequence;
    let at = version.unwrap_or(latest);
    let stored = usize::try_from(at).ok().and_then(|i| kel.events.get(i));
    if at == latest {
        if let Some(cached) = kel.latest_resolution.get() {
            return Ok(cached.clone());
        }
        let stored = stored.ok_or_else(|| ServerError::internal("resolved version missing"))?;
        let receipt = receipt(&stored.event, stored.log_index)?;
        let answer = response(&did::resolve_latest_verified(&kel.state)?, Some(receipt))?;
        // Another request may have filled it meanwhile with the same answer.
        let _ = kel.latest_resolution.set(answer.clone());
        return Ok(answer);
    }
    let signed: Vec<SignedEvent> = kel.events.iter().map(|e| e.event.clone()).collect();
    let result = did::resolve_did_atp_with(&state.kel_verifier, did, &signed, version)?;
    let stored = stored.ok_or_else(|| ServerError::internal("resolved version missing"))?;
    response(&result, Some(receipt(&stored.event, stored.log_index)?))
}

fn response(
    result: &did::ResolutionResult,
    log_receipt: Option<pb::LogReceipt>,
) -> Result<pb::ResolveResponse> {
    let json = |v: &dyn erased::Json| v.to_json();
    Ok(pb::ResolveResponse {
        did_document_json: json(&result.did_document)?,
        did_resolution_metadata_json: json(&result.did_resolution_metadata)?,
        did_document_metadata_json: json(&result.did_document_metadata)?,
        log_receipt,
    })
}

mod erased {
    //! A tiny object-safe "serialize to JSON text" helper.
    use crate::error::{Result, ServerError};

    pub(super) trait Json {
        fn to_json(&self) -> Result<String>;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<String> {
            serde_json::to_string(self).map_err(|e| ServerError::internal(e.to_string()))
        }
    }
}

#[tonic::async_trait]
impl IdentityService for IdentityServiceImpl {
    async fn submit_event(
        &self,
        request: Request<pb::SubmitEventRequest>,
    ) -> std::result::Result<Response<pb::SubmitEventResponse>, Status> {
        const METHOD: &str = "atp.v1.IdentityService/SubmitEvent";
        let call = CallInfo::from_grpc(METHOD, &request);
        let r = submit_event(&self.state, &call, &request.into_inner().signed_event_json).await;
        Ok(Response::new(r?))
    }

    async fn resolve(
        &self,
        request: Request<pb::ResolveRequest>,
    ) -> std::result::Result<Response<pb::ResolveResponse>, Status> {
        let req = request.into_inner();
        let r = resolve(&self.state, &req.did, req.version_id).await;
        Ok(Response::new(r?))
    }

    async fn get_key_event_log(
        &self,
        request: Request<pb::GetKeyEventLogRequest>,
    ) -> std::result::Result<Response<pb::GetKeyEventLogResponse>, Status> {
        let req = request.into_inner();
        let r = async {
            did::parse_did_atp(&req.did)?;
            let events = self.state.store.get_kel(&req.did).await?;
            if events.is_empty() {
                return Err(ServerError::DidNotFound(req.did.clone()));
            }
            let size = u64::from(self.state.settings.limits.page_size(req.page_size));
            let page = events
                .iter()
                .filter(|e| e.sequence >= req.from_sequence)
                .take(usize::try_from(size).unwrap_or(usize::MAX))
                .map(key_event)
                .collect::<Result<Vec<_>>>()?;
            Ok(pb::GetKeyEventLogResponse {
                did: req.did.clone(),
                events: page,
                event_count: events.len() as u64,
            })
        }
        .await;
        Ok(Response::new(r?))
    }

    async fn list_identities(
        &self,
        request: Request<pb::ListIdentitiesRequest>,
    ) -> std::result::Result<Response<pb::ListIdentitiesResponse>, Status> {
        let req = request.into_inner();
        let r = async {
            let token = parse_page_token(&req.page_token)?;
            let size = self.state.settings.limits.page_size(req.page_size);
            let page = match self.state.store.list_identities(size, token).await {
                Ok(p) => p,
                Err(StoreError::InvalidArgument(_)) => return Err(page_token_invalid()),
                Err(e) => return Err(e.into()),
            };
            Ok(pb::ListIdentitiesResponse {
                identities: page
                    .identities
                    .into_iter()
                    .map(|i| pb::IdentitySummary {
                        did: i.did,
                        latest_sequence: i.sequence,
                        deactivated: i.deactivated,
                        created: i.created,
                        updated: i.updated,
                    })
                    .collect(),
                next_page_token: page
                    .next_page_token
                    .map(|t| format!("{PAGE_TOKEN_PREFIX}{t}"))
                    .unwrap_or_default(),
            })
        }
        .await;
        Ok(Response::new(r?))
    }
}
