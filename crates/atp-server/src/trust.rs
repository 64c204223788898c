//! `atp.v1.TrustService`: signed evidence in, scores and signed trust proofs out (docs/trust.md,
//! docs/protocol.md Part G).
//!
//! - **SubmitEvidence** parses and verifies the evidence with `atp_core::evidence` against the
//!   signers' key event logs held by this node (the keys' validity windows come from the verified
//!   logs, as for envelopes), refuses a signer deactivated at or before `created`
//!   (`EVIDENCE_SIGNER_DEACTIVATED`), and stores it with its `evidence` log leaf (data hash = the
//!   content hash) in one transaction. The same body again is idempotent: the original receipt,
//!   `duplicate` = true, nothing stored.
//! - **The computation** ([`recompute_now`]) reads every stored piece of evidence, the
//!   deactivations from the stored key event logs and the operator's trust anchors, runs
//!   `atp_trust::compute` on a blocking thread and swaps the resulting [`Snapshot`] in. One job
//!   per node at a time (a mutex). When and where it runs (every node alone, or one node of a
//!   cluster under a lease, the others loading its stored result) is [`crate::trust_job`].
//! - **Reads** (GetTrust, ExplainTrust) are served from the last snapshot only:
//!   `TRUST_NOT_COMPUTED` before the first one. GetTrust signs a short-lived trust proof with the
//!   node's key (`atp_core::trust_proof::issue_trust_proof`).
//!
//! - **CredentialEvidence** is derived from the credentials this node verified
//!   ([`record_verified_credential`], called by VerifyCredential and VerifyPresentation after a
//!   credential passed every check). Only what the node can keep checking is recorded: both
//!   proofs verified under the quantum-safe policy, a `did:atp` issuer and exactly one `did:atp`
//!   subject that differ, and every `credentialStatus` entry on a list this node hosts (an
//!   unchecked external list could be revoked without the node knowing). It is stored like
//!   submitted evidence (kind `CredentialEvidence`, content hash `SHA-256(JCS(credential))`, one
//!   `evidence` leaf, idempotent) with the credential as `evidence_json`. Each computation reads
//!   the credential's status entries against the lists as they are then, so a revocation or a
//!   suspension drops the credential (and the level-2 gate it opened) at the next computation;
//!   `validUntil` drops it when it passes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use atp_core::envelope::KeyValidity;
use atp_core::evidence::{
    self, EvidenceKind as WireKind, EvidenceVerifyContext, SignedEvidence, VerifiedEvidence,
};
use atp_core::log_entry::entry_leaf_hash;
use atp_core::trust_proof::{TrustClaims, issue_trust_proof};
use atp_grpc::reasons;
use atp_grpc::v1 as pb;
use atp_grpc::v1::trust_service_server::TrustService;
use atp_store::{LeafKind, NewTrustEvidence, TrustEvidenceFilter, TrustEvidenceRecord};
use atp_trust::{EvidenceGraph, Snapshot};
use tonic::{Request, Response, Status};

use atp_core::data_integrity::ProofPolicy;
use atp_core::status_list::BitstringStatusListEntry;
use atp_core::vc;
use serde_json::Value;

use crate::credential::common as credential;
use crate::error::{Result, ServerError};
use crate::extensions::DomainEvent;
use crate::state::{AppState, CachedProof, NodeState};

/// ListEvidence's page size when the request asks for 0.
pub const DEFAULT_EVIDENCE_PAGE_SIZE: u32 = 50;

/// ExplainTrust's path count when the request asks for 0.
pub const DEFAULT_EXPLAIN_PATHS: u32 = 10;

/// The most paths ExplainTrust returns.
pub const MAX_EXPLAIN_PATHS: u32 = 50;

/// How many stored pieces of evidence one store read of the computation fetches.
const SCAN_CHUNK: u32 = 1000;

/// The stored kind of evidence derived from a verified credential.
pub const CREDENTIAL_EVIDENCE_KIND: &str = "CredentialEvidence";

/// How many signed trust proofs the node keeps for reuse (about 5 KiB each: the ML-DSA-65
/// proof dominates). Past this the memory starts afresh.
pub const TRUST_PROOF_CACHE_CAPACITY: usize = 4096;

/// How many content hashes of recorded credentials the node remembers, so that verifying the
/// same credential again costs no store write. Past this the memory starts afresh (the store
/// stays idempotent either way).
const RECORDED_CREDENTIALS_MEMORY: usize = 65_536;

// `TrustState`, the engine's state in the node, lives in `state.rs` with the rest of the node
// state, so that the state module does not import this service; it is re-exported here.
pub use crate::state::TrustState;

fn not_computed() -> ServerError {
    ServerError::rejected(reasons::TRUST_NOT_COMPUTED, "no trust snapshot computed yet; retry")
}

fn wire_kind(kind: &str) -> pb::EvidenceKind {
    match WireKind::from_name(kind) {
        Some(WireKind::Endorsement) => pb::EvidenceKind::Endorsement,
        Some(WireKind::InteractionReceipt) => pb::EvidenceKind::InteractionReceipt,
        Some(WireKind::IncidentReport) => pb::EvidenceKind::IncidentReport,
        None if kind == CREDENTIAL_EVIDENCE_KIND => pb::EvidenceKind::Credential,
        None => pb::EvidenceKind::Unspecified,
    }
}

fn receipt(log_index: u64, content_hash: &[u8; 32]) -> pb::LogReceipt {
    pb::LogReceipt {
        leaf_index: log_index,
        leaf_hash: entry_leaf_hash(LeafKind::Evidence, content_hash).to_vec(),
    }
}

/// The key established by event `seq` of `did`'s stored, verified log, and when `did` was
/// deactivated (`None`: it was not). `(None, None)` when the node holds no log of `did`.
async fn signer_facts(
    state: &NodeState,
    did: &str,
    seq: u64,
) -> Result<(Option<KeyValidity>, Option<i64>)> {
    if atp_core::did::parse_did_atp(did).is_err() {
        return Ok((None, None));
    }
    let Some(kel) = state.load_kel(did).await? else { return Ok((None, None)) };
    let events: Vec<_> = kel.events.iter().map(|e| e.event.clone()).collect();
    let validity = state
        .kel_verifier
        .key_validity(did, &events, seq)
        .map_err(|e| ServerError::internal(format!("stored log of {did}: {e}")))?;
    let deactivated_at = if kel.state.deactivated {
        Some(
            atp_core::kel::parse_timestamp(&kel.state.updated)
                .map_err(|e| ServerError::internal(format!("stored log of {did}: {e}")))?,
        )
    } else {
        None
    };
    Ok((validity, deactivated_at))
}

/// Verifies and stores one piece of signed evidence (see the module documentation).
pub async fn submit_evidence(state: &NodeState, json: &[u8]) -> Result<pb::SubmitEvidenceResponse> {
    let signed = SignedEvidence::from_json(json)?;
    let body = &signed.body;
    // Shape, limits and self-evidence first: nothing is looked up for malformed input.
    let created_ms = body.validate()?;
    let mut signers = vec![(body.issuer.clone(), body.issuer_key_seq)];
    if let Some(seq) = body.subject_key_seq {
        signers.push((body.subject.clone(), seq));
    }
    let mut keys: HashMap<(String, u64), KeyValidity> = HashMap::new();
    let mut deactivated = None;
    for (did, seq) in signers {
        let (validity, deactivated_at) = signer_facts(state, &did, seq).await?;
        if deactivated.is_none() && deactivated_at.is_some_and(|at| at <= created_ms) {
            deactivated = Some(did.clone());
        }
        if let Some(v) = validity {
            keys.insert((did, seq), v);
        }
    }
    // Before the signatures: a deactivated signer's key window has ended, and the precise
    // reason is the deactivation.
    if let Some(did) = deactivated {
        return Err(ServerError::rejected(
            reasons::EVIDENCE_SIGNER_DEACTIVATED,
            format!("{did} was deactivated at or before the evidence's creation"),
        ));
    }
    // The verifier's context is not `Send`: it must not live across an await.
    let verified = {
        let lookup = |did: &str, seq: u64| keys.get(&(did.to_owned(), seq)).cloned();
        let ctx = EvidenceVerifyContext {
            key_lookup: &lookup,
            now_ms: state.now_ms(),
            max_skew_ms: state.settings.limits.clock_skew_ms(),
        };
        let verified = evidence::verify(&signed, &ctx);
        observe_signatures(state, &signed, &keys, &verified);
        verified?
    };
    let evidence_json = String::from_utf8(json.to_vec())
        .map_err(|_| ServerError::internal("parsed JSON is not UTF-8"))?;
    let recorded = state
        .store
        .record_trust_evidence(NewTrustEvidence {
            content_hash: verified.content_hash,
            kind: verified.body.kind.as_str().to_owned(),
            issuer: verified.body.issuer.clone(),
            subject: verified.body.subject.clone(),
            created_ms: verified.created_ms,
            evidence_json,
        })
        .await?;
    if !recorded.duplicate {
        state.log_grew.notify_one();
        state.extensions.observer.on_domain_event(&DomainEvent::Other {
            kind: "trust.evidence_accepted",
            detail: verified.body.kind.as_str().to_owned(),
        });
    }
    Ok(pb::SubmitEvidenceResponse {
        content_hash: verified.content_hash.to_vec(),
        duplicate: recorded.duplicate,
        log_receipt: Some(receipt(recorded.log_index, &verified.content_hash)),
    })
}

/// Reports the signature checks of submitted evidence: the issuer's signature is checked first,
/// then the subject's countersignature (receipts). Refusals before the signatures (and a missing
/// countersignature) are not counted.
fn observe_signatures(
    state: &NodeState,
    signed: &SignedEvidence,
    keys: &HashMap<(String, u64), KeyValidity>,
    verified: &std::result::Result<VerifiedEvidence, atp_core::CoreError>,
) {
    use atp_core::CoreError::EvidenceBadSignature;
    let body = &signed.body;
    let countersigned = signed.subject_sig.is_some() && body.subject_key_seq.is_some();
    let (issuer_ok, subject_ok) = match verified {
        Ok(_) => (true, countersigned.then_some(true)),
        Err(EvidenceBadSignature { role: "issuer", .. }) => (false, None),
        Err(EvidenceBadSignature { role: "subject", .. }) if countersigned => (true, Some(false)),
        Err(_) => return,
    };
    let algorithm =
        |did: &str, seq: u64| keys.get(&(did.to_owned(), seq)).map(|v| v.key.algorithm().name());
    if let Some(a) = algorithm(&body.issuer, body.issuer_key_seq) {
        state.extensions.signature_verified("evidence", a, issuer_ok);
    }
    if let (Some(ok), Some(seq)) = (subject_ok, body.subject_key_seq)
        && let Some(a) = algorithm(&body.subject, seq)
    {
        state.extensions.signature_verified("evidence", a, ok);
    }
}

/// The engine's view of one stored record. Stored evidence was verified on submission; it is
/// parsed again (not re-verified) for the fields the engine weighs.
fn engine_evidence(record: &TrustEvidenceRecord) -> Result<atp_trust::Evidence> {
    let signed = SignedEvidence::from_json(record.evidence_json.as_bytes())?;
    let created_ms = signed.body.validate()?;
    let verified =
        VerifiedEvidence { body: signed.body, content_hash: record.content_hash, created_ms };
    Ok(atp_trust::Evidence::from(&verified))
}

/// The engine's view of a stored verified credential, with its status read from the lists as
/// they are now (`lists` caches them for one computation). A status entry whose list is gone or
/// no longer the issuer's counts as revoked: the node can no longer vouch that it is clear.
async fn credential_evidence(
    state: &NodeState,
    record: &TrustEvidenceRecord,
    lists: &mut HashMap<String, Option<atp_store::StatusListRecord>>,
) -> Result<atp_trust::CredentialEvidence> {
    let vc_json: Value = serde_json::from_str(&record.evidence_json)
        .map_err(|e| ServerError::internal(format!("stored credential: {e}")))?;
    let info = vc::check_credential(&vc_json)?;
    let mut revoked = false;
    for raw in credential::status_entries(&vc_json) {
        let entry = BitstringStatusListEntry::from_json(raw)?;
        let index = entry.index()?;
        let Some(list_id) = credential::hosted_list_id(state, &entry.status_list_credential) else {
            revoked = true;
            break;
        };
        if !lists.contains_key(list_id) {
            let list = state.store.get_status_list(list_id).await?;
            lists.insert(list_id.to_owned(), list);
        }
        let clear = match lists.get(list_id).and_then(Option::as_ref) {
            Some(list) if list.issuer == info.issuer && list.purpose == entry.status_purpose => {
                list.list.get(index).is_ok_and(|v| v == 0)
            }
            _ => false,
        };
        if !clear {
            revoked = true;
            break;
        }
    }
    Ok(atp_trust::CredentialEvidence {
        id: hex::encode(record.content_hash),
        issuer: record.issuer.clone(),
        subject: record.subject.clone(),
        valid_from_ms: info.valid_from.map_or(i64::MIN, |t| t.unix_millis()),
        valid_until_ms: info.valid_until.map(|t| t.unix_millis()),
        revoked,
    })
}

/// Records a credential that just passed verification as `CredentialEvidence`, when the node
/// can keep checking it (see the module documentation); otherwise does nothing. A store failure
/// is logged, not returned: the verification's answer stands either way.
pub(crate) async fn record_verified_credential(
    state: &NodeState,
    vc_json: &Value,
    info: &vc::CredentialInfo,
    policy: ProofPolicy,
    status_checks: &[pb::StatusCheck],
) {
    let [subject] = info.subject_ids.as_slice() else { return };
    let is_atp = |did: &str| atp_core::did::parse_did_atp(did).is_ok();
    if policy != ProofPolicy::QuantumSafe
        || !is_atp(&info.issuer)
        || !is_atp(subject)
        || *subject == info.issuer
        || status_checks.iter().any(|c| c.outcome != pb::StatusCheckOutcome::Clear as i32)
    {
        return;
    }
    let Ok(evidence_json) = atp_core::jcs::to_canonical_string(vc_json) else { return };
    if evidence_json.len() > atp_store::MAX_TRUST_EVIDENCE_BYTES {
        return;
    }
    let content_hash = atp_crypto::sha256(evidence_json.as_bytes());
    {
        let known = state.trust.recorded_credentials.lock().unwrap_or_else(|p| p.into_inner());
        if known.contains(&content_hash) {
            return;
        }
    }
    let created_ms = info.valid_from.map_or_else(|| state.now_ms(), |t| t.unix_millis());
    let recorded = state
        .store
        .record_trust_evidence(NewTrustEvidence {
            content_hash,
            kind: CREDENTIAL_EVIDENCE_KIND.to_owned(),
            issuer: info.issuer.clone(),
            subject: subject.clone(),
            created_ms,
            evidence_json,
        })
        .await;
    match recorded {
        Ok(r) => {
            let mut known =
                state.trust.recorded_credentials.lock().unwrap_or_else(|p| p.into_inner());
            if known.len() >= RECORDED_CREDENTIALS_MEMORY {
                known.clear();
            }
            known.insert(content_hash);
            drop(known);
            if !r.duplicate {
                state.log_grew.notify_one();
            }
        }
        // An erased subject's credentials are not kept: that is the erasure working.
        Err(atp_store::StoreError::SubjectErased { .. }) => {}
        Err(e) => tracing::warn!("recording credential evidence failed: {e}"),
    }
}

fn trust_error(e: atp_trust::TrustError) -> ServerError {
    ServerError::internal(format!("trust computation: {e}"))
}

/// Computes a new snapshot from the store now and publishes it; returns it. One computation per
/// node at a time: a call made while one runs waits for it and then computes again.
pub async fn recompute_now(state: &NodeState) -> Result<Arc<Snapshot>> {
    let _job = state.trust.job.lock().await;
    let started = Instant::now();
    let store = &state.store;
    let mut graph = EvidenceGraph::new();
    // The status lists as they are now, read once per computation.
    let mut lists: HashMap<String, Option<atp_store::StatusListRecord>> = HashMap::new();
    let mut after = None;
    loop {
        let chunk = store.scan_trust_evidence(after, SCAN_CHUNK).await?;
        let Some(last) = chunk.last() else { break };
        after = Some(last.log_index);
        for record in &chunk {
            if record.kind == CREDENTIAL_EVIDENCE_KIND {
                match credential_evidence(state, record, &mut lists).await {
                    Ok(c) => graph.set_credential(&c).map_err(trust_error)?,
                    Err(e) => tracing::warn!(
                        log_index = record.log_index,
                        reason = e.reason(),
                        "stored credential evidence does not parse; skipped"
                    ),
                }
                continue;
            }
            match engine_evidence(record) {
                Ok(e) => {
                    graph.insert(&e).map_err(trust_error)?;
                }
                // Stored evidence was accepted under these rules; skip (and report) rather than
                // let one bad row stop every score.
                Err(e) => tracing::warn!(
                    log_index = record.log_index,
                    reason = e.reason(),
                    "stored trust evidence does not parse; skipped"
                ),
            }
        }
    }
    let mut token: Option<String> = None;
    loop {
        let page = store.list_identities(atp_store::MAX_PAGE_SIZE, token.as_deref()).await?;
        for identity in page.identities.iter().filter(|i| i.deactivated) {
            match atp_core::kel::parse_timestamp(&identity.updated) {
                Ok(at) => graph.deactivate(&identity.did, at).map_err(trust_error)?,
                Err(_) => tracing::warn!(did = %identity.did, "deactivation time does not parse"),
            }
        }
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    // DIDs whose key event log forked: their key history is ambiguous (gate KEL_FORK).
    let mut after: Option<String> = None;
    loop {
        let forked = store
            .evidence_subjects(
                crate::identity::KEL_FORK_EVIDENCE,
                after.as_deref(),
                atp_store::MAX_ENTRIES_PER_CALL,
            )
            .await?;
        for did in &forked {
            graph.record_fork(did).map_err(trust_error)?;
        }
        match forked.last() {
            Some(last) if forked.len() == atp_store::MAX_ENTRIES_PER_CALL as usize => {
                after = Some(last.clone());
            }
            _ => break,
        }
    }
    let anchors = store.list_trust_anchors().await?;
    let config = state.trust.config.clone();
    let now = state.now_ms();
    let snapshot =
        tokio::task::spawn_blocking(move || atp_trust::compute(&graph, &anchors, &config, now))
            .await
            .map_err(|e| ServerError::internal(format!("trust computation task: {e}")))?
            .map_err(trust_error)?;
    let snapshot = Arc::new(snapshot);
    state.trust.publish(snapshot.clone());
    tracing::debug!(
        nodes = snapshot.node_count(),
        edges = snapshot.edge_count(),
        iterations = snapshot.iterations(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "trust snapshot computed"
    );
    let elapsed = started.elapsed();
    let agents_by_level = snapshot.level_counts();
    state
        .extensions
        .observer
        .on_domain_event(&DomainEvent::TrustRecomputed { elapsed, agents_by_level });
    Ok(snapshot)
}

fn check_did(field: &'static str, did: &str) -> Result<()> {
    if did.is_empty() {
        return Err(ServerError::field(field, "is required"));
    }
    atp_core::did::validate_did(did)?;
    Ok(())
}

/// GetTrust: the subject's result in the last snapshot, with a trust proof signed now.
pub fn get_trust(state: &NodeState, did: &str) -> Result<pb::GetTrustResponse> {
    check_did("did", did)?;
    let snapshot = state.trust.snapshot().ok_or_else(not_computed)?;
    let result = snapshot.get(did);
    let now_secs = state.now_ms().div_euclid(1000);
    let ttl = state.settings.trust_proof_ttl_secs;
    let (issued_secs, proof_json) = trust_proof_json(state, &snapshot, &result, now_secs, ttl)?;
    Ok(pb::GetTrustResponse {
        did: did.to_owned(),
        score: atp_core::trust_proof::published_score(result.score),
        level: u32::from(result.level),
        evidence_count: result.evidence_count,
        computed_at_unix_ms: snapshot.computed_at_ms(),
        valid_until_unix_ms: issued_secs.saturating_add(ttl).saturating_mul(1000),
        trust_proof_json: proof_json.as_ref().clone(),
        level_name: atp_trust::level_name(result.level).to_owned(),
        gates: result.gates.iter().map(|g| g.as_str().to_owned()).collect(),
        raw_score: result.raw_score,
        penalty: result.penalty,
    })
}

/// The signed proof of `result`: a cached one when it states exactly these claims and has at
/// least half of its lifetime left, else a new one (two signatures, ML-DSA-65 and Ed25519, the
/// cost of GetTrust) that replaces it. Returns when it was issued and its JSON.
fn trust_proof_json(
    state: &NodeState,
    snapshot: &Snapshot,
    result: &atp_trust::TrustResult,
    now_secs: i64,
    ttl: i64,
) -> Result<(i64, Arc<Vec<u8>>)> {
    let claims = TrustClaims {
        subject: result.did.clone(),
        score: result.score,
        level: result.level,
        evidence_count: result.evidence_count,
        computed_at_ms: snapshot.computed_at_ms(),
    };
    {
        let proofs = state.trust.proofs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = proofs.get(&result.did)
            && c.claims == claims
            && c.ttl_secs == ttl
            && c.issued_secs <= now_secs
            && now_secs.saturating_sub(c.issued_secs).saturating_mul(2) <= ttl
        {
            return Ok((c.issued_secs, c.json.clone()));
        }
    }
    let proof = issue_trust_proof(&state.node_did, &state.node_key, &claims, now_secs, ttl)?;
    let json = Arc::new(
        serde_json::to_vec(&proof)
            .map_err(|e| ServerError::internal(format!("trust proof: {e}")))?,
    );
    let mut proofs = state.trust.proofs.lock().unwrap_or_else(|p| p.into_inner());
    if proofs.len() >= TRUST_PROOF_CACHE_CAPACITY {
        proofs.clear();
    }
    proofs.insert(
        result.did.clone(),
        CachedProof { claims, issued_secs: now_secs, ttl_secs: ttl, json: json.clone() },
    );
    Ok((now_secs, json))
}

/// ExplainTrust: the top contributing paths from the anchors, from the last snapshot.
pub fn explain_trust(
    state: &NodeState,
    did: &str,
    max_paths: u32,
) -> Result<pb::ExplainTrustResponse> {
    check_did("did", did)?;
    let snapshot = state.trust.snapshot().ok_or_else(not_computed)?;
    let n = match max_paths {
        0 => DEFAULT_EXPLAIN_PATHS,
        n => n.min(MAX_EXPLAIN_PATHS),
    };
    let explanation = snapshot.explain(did, n as usize);
    let r = &explanation.result;
    Ok(pb::ExplainTrustResponse {
        did: did.to_owned(),
        score: atp_core::trust_proof::published_score(r.score),
        level: u32::from(r.level),
        paths: explanation
            .paths
            .iter()
            .map(|p| pb::TrustPath {
                edges: p
                    .edges
                    .iter()
                    .map(|e| pb::TrustEdge {
                        from_did: e.from.clone(),
                        to_did: e.to.clone(),
                        weight: e.weight,
                    })
                    .collect(),
                contribution: p.contribution,
            })
            .collect(),
        gates: r.gates.iter().map(|g| g.as_str().to_owned()).collect(),
        raw_score: r.raw_score,
        penalty: r.penalty,
        computed_at_unix_ms: snapshot.computed_at_ms(),
    })
}

/// ListEvidence: stored evidence, newest first, filtered and paged.
pub async fn list_evidence(
    state: &NodeState,
    req: pb::ListEvidenceRequest,
) -> Result<pb::ListEvidenceResponse> {
    let optional_did = |field: &'static str, did: String| -> Result<Option<String>> {
        if did.is_empty() {
            return Ok(None);
        }
        check_did(field, &did)?;
        Ok(Some(did))
    };
    let kind = match pb::EvidenceKind::try_from(req.kind) {
        Ok(pb::EvidenceKind::Unspecified) => None,
        Ok(pb::EvidenceKind::Endorsement) => Some(WireKind::Endorsement.as_str()),
        Ok(pb::EvidenceKind::InteractionReceipt) => Some(WireKind::InteractionReceipt.as_str()),
        Ok(pb::EvidenceKind::IncidentReport) => Some(WireKind::IncidentReport.as_str()),
        Ok(pb::EvidenceKind::Credential) => Some(CREDENTIAL_EVIDENCE_KIND),
        Err(_) => return Err(ServerError::field("kind", format!("unknown kind {}", req.kind))),
    };
    let filter = TrustEvidenceFilter {
        subject: optional_did("subject", req.subject)?,
        issuer: optional_did("issuer", req.issuer)?,
        kind: kind.map(str::to_owned),
    };
    let size = match req.page_size {
        0 => DEFAULT_EVIDENCE_PAGE_SIZE,
        n => n,
    }
    .min(state.settings.limits.max_page_size);
    let token = Some(req.page_token.as_str()).filter(|t| !t.is_empty());
    let page =
        state.store.list_trust_evidence(&filter, size, token).await.map_err(|e| match e {
            atp_store::StoreError::InvalidArgument(_) => ServerError::rejected(
                reasons::PAGE_TOKEN_INVALID,
                "page_token is not a token of this listing",
            ),
            other => other.into(),
        })?;
    Ok(pb::ListEvidenceResponse {
        evidence: page
            .evidence
            .into_iter()
            .map(|r| pb::EvidenceRecord {
                log_receipt: Some(receipt(r.log_index, &r.content_hash)),
                content_hash: r.content_hash.to_vec(),
                kind: wire_kind(&r.kind) as i32,
                issuer: r.issuer,
                subject: r.subject,
                created_unix_ms: r.created_ms,
                evidence_json: r.evidence_json.into_bytes(),
            })
            .collect(),
        next_page_token: page.next_page_token.unwrap_or_default(),
    })
}

/// The TrustService implementation.
#[derive(Clone, Debug)]
pub struct TrustApi {
    state: AppState,
}

impl TrustApi {
    /// The service over `state`.
    pub fn new(state: AppState) -> Self {
        TrustApi { state }
    }
}

#[tonic::async_trait]
impl TrustService for TrustApi {
    async fn submit_evidence(
        &self,
        request: Request<pb::SubmitEvidenceRequest>,
    ) -> std::result::Result<Response<pb::SubmitEvidenceResponse>, Status> {
        let r = submit_evidence(&self.state, &request.into_inner().evidence_json).await;
        Ok(Response::new(r?))
    }

    async fn get_trust(
        &self,
        request: Request<pb::GetTrustRequest>,
    ) -> std::result::Result<Response<pb::GetTrustResponse>, Status> {
        let r = get_trust(&self.state, &request.into_inner().did);
        Ok(Response::new(r?))
    }

    async fn explain_trust(
        &self,
        request: Request<pb::ExplainTrustRequest>,
    ) -> std::result::Result<Response<pb::ExplainTrustResponse>, Status> {
        let req = request.into_inner();
        let r = explain_trust(&self.state, &req.did, req.max_paths);
        Ok(Response::new(r?))
    }

    async fn list_evidence(
        &self,
        request: Request<pb::ListEvidenceRequest>,
    ) -> std::result::Result<Response<pb::ListEvidenceResponse>, Status> {
        let r = list_evidence(&self.state, request.into_inner()).await;
        Ok(Response::new(r?))
    }
}
