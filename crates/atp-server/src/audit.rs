//! The audit trail on the request path (docs/audit.md): who called, what was decided, what
//! changed, recorded fail-closed.
//!
//! - **Refusals first.** [`NodeState::admit`] authenticates and authorizes a call. A refused
//!   credential (`authn.failed`) or a denied decision (`authz.denied`) is stored *before* the
//!   refusal is answered.
//! - **With the change.** An admitted call carries an [`Admitted`] trail (`authn.succeeded`
//!   when the caller presented credentials), adds what it did, and hands the trail to
//!   [`NodeState::write_audited`], which stores the change and its events in one transaction.
//!   If the events cannot be stored, the change is not made and the call fails.
//! - **The sink decides what is kept.** Each event goes through the [`AuditSink`] seam: the
//!   community sink writes a `tracing` line and stores nothing; the enterprise trail stores the
//!   event with its sensitive fields replaced by keyed hashes.
//!
//! [`AuditSink`]: crate::extensions::AuditSink

use atp_core::audit::{Actor, AuditEvent, Client, EventCode, Outcome, Target, uuid_v7};
use atp_store::audit::MAX_EXPIRE_BATCHES;
use atp_store::{AuditEntry, AuditedOutcome, AuditedWrite};

use crate::error::{Result, ServerError};
use crate::extensions::{CallInfo, Principal};
use crate::state::NodeState;

/// The events one request stores with its change.
#[derive(Debug, Default)]
#[must_use = "a trail is stored with the change it records (NodeState::write_audited)"]
pub struct Trail {
    entries: Vec<AuditEntry>,
}

impl Trail {
    /// The stored forms, in the order recorded.
    pub fn into_entries(self) -> Vec<AuditEntry> {
        self.entries
    }
}

/// A call that was authenticated and authorized, and the trail it carries.
#[derive(Debug)]
pub struct Admitted {
    /// Who is calling.
    pub principal: Principal,
    /// The events to store with the call's change.
    pub trail: Trail,
    operation: String,
}

/// An event target.
pub fn target(kind: &str, id: impl Into<String>) -> Target {
    Target { kind: kind.to_owned(), id: id.into() }
}

/// The longest identifier an event keeps as it is; a longer one (a caller's resource name, a
/// credential id) is kept as `sha256:` and its hex digest, so that no input can make an event
/// exceed its limits and fail the request it records.
pub const MAX_EVENT_ID_BYTES: usize = 256;
/// The most targets an event lists; the rest are counted in a last `more` target.
pub const MAX_EVENT_TARGETS: usize = 32;

fn bounded(id: String) -> String {
    if id.len() <= MAX_EVENT_ID_BYTES {
        return id;
    }
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(id.as_bytes())))
}

/// The targets within [`MAX_EVENT_TARGETS`] and [`MAX_EVENT_ID_BYTES`].
fn bounded_targets(mut targets: Vec<Target>) -> Vec<Target> {
    if targets.len() > MAX_EVENT_TARGETS {
        let more = targets.len() - (MAX_EVENT_TARGETS - 1);
        targets.truncate(MAX_EVENT_TARGETS - 1);
        targets.push(target("more", more.to_string()));
    }
    targets.into_iter().map(|t| Target { kind: t.kind, id: bounded(t.id) }).collect()
}

fn actor(principal: Option<&Principal>) -> Actor {
    let (id, kind) = match principal {
        None => ("unknown", "unknown"),
        Some(Principal::Anonymous) => ("anonymous", "anonymous"),
        Some(Principal::Admin) => ("admin", "admin"),
        Some(Principal::User { id, .. }) if id.starts_with("did:") => (id.as_str(), "agent"),
        Some(Principal::User { id, .. }) => (id.as_str(), "user"),
    };
    Actor { id: bounded(id.to_owned()), kind: kind.to_owned(), tenant: None }
}

fn success() -> Outcome {
    Outcome { result: "SUCCESS".into(), reason: None }
}

impl NodeState {
    /// One event about `call`, now.
    pub fn audit_event(
        &self,
        call: &CallInfo,
        principal: Option<&Principal>,
        code: EventCode,
        target: Vec<Target>,
        outcome: Outcome,
        rule: Option<&str>,
    ) -> Result<AuditEvent> {
        let now = self.now_ms();
        let mut random = [0u8; 10];
        atp_crypto::random_bytes(&mut random)
            .map_err(|e| ServerError::internal(format!("no randomness for an audit id: {e}")))?;
        Ok(AuditEvent {
            id: uuid_v7(u64::try_from(now).unwrap_or(0), random),
            time: now,
            code: code.as_str().to_owned(),
            event_type: code.event_type().to_owned(),
            actor: actor(principal),
            client: Client {
                ip: call.peer.map(|p| p.ip().to_string()),
                user_agent: call.user_agent.clone(),
                certificate: call.client_certificate.as_ref().map(|c| c.fingerprint()),
            },
            target: bounded_targets(target),
            outcome,
            request_id: call.request_id.clone(),
            rule: rule.map(str::to_owned),
        })
    }

    /// Adds `event` to `trail` in the sink's stored form (nothing when the sink stores none).
    pub fn push_audit(&self, trail: &mut Trail, event: &AuditEvent) -> Result<()> {
        if let Some(entry) = self.extensions.audit.entry(event)? {
            trail.entries.push(entry);
        }
        Ok(())
    }

    /// Stores `trail` alone, for a call that changes nothing (a read, a refusal).
    pub async fn store_trail(&self, trail: Trail) -> Result<()> {
        if !trail.entries.is_empty() {
            self.store.write_audited(AuditedWrite::Nothing, trail.into_entries()).await?;
        }
        Ok(())
    }

    /// Makes `write` and stores `trail` with it, in one transaction.
    pub async fn write_audited(&self, write: AuditedWrite, trail: Trail) -> Result<AuditedOutcome> {
        Ok(self.store.write_audited(write, trail.into_entries()).await?)
    }

    /// Records a refusal of `call` (before it is answered) and returns `refusal`.
    async fn refused(
        &self,
        call: &CallInfo,
        principal: Option<&Principal>,
        code: EventCode,
        operation: &str,
        resource: &str,
        refusal: ServerError,
    ) -> ServerError {
        let result = if code == EventCode::AuthzDenied { "DENIED" } else { "FAILURE" };
        let outcome = Outcome { result: result.into(), reason: Some(refusal.reason().to_owned()) };
        let stored = async {
            let event = self.audit_event(
                call,
                principal,
                code,
                vec![target("resource", resource)],
                outcome,
                Some(operation),
            )?;
            let mut trail = Trail::default();
            self.push_audit(&mut trail, &event)?;
            self.store_trail(trail).await
        };
        match stored.await {
            Ok(()) => refusal,
            Err(e) => {
                // Refused either way; the caller learns that the trail is down, so that the
                // refusal is never silently unrecorded.
                tracing::warn!(error = %e, operation, "recording a refusal failed");
                e
            }
        }
    }

    /// Authenticates `call` and authorizes `operation` on `resource`. A refusal is recorded
    /// before it is returned; an admitted call's trail starts with its authentication.
    pub async fn admit(
        &self,
        call: &CallInfo,
        operation: &str,
        resource: &str,
    ) -> Result<Admitted> {
        let ext = &self.extensions;
        let principal = match ext.authenticator.authenticate(call).await {
            Ok(p) => p,
            Err(e) => {
                let code = EventCode::AuthnFailed;
                return Err(self.refused(call, None, code, operation, resource, e).await);
            }
        };
        if let Err(e) = ext.authorizer.authorize(&principal, operation, resource).await {
            let code = EventCode::AuthzDenied;
            return Err(self.refused(call, Some(&principal), code, operation, resource, e).await);
        }
        let mut trail = Trail::default();
        if principal != Principal::Anonymous {
            let event = self.audit_event(
                call,
                Some(&principal),
                EventCode::AuthnSucceeded,
                Vec::new(),
                success(),
                Some(operation),
            )?;
            self.push_audit(&mut trail, &event)?;
        }
        Ok(Admitted { principal, trail, operation: operation.to_owned() })
    }
}

impl Admitted {
    /// Adds a successful `code` about `targets` to the trail.
    pub fn record(
        &mut self,
        state: &NodeState,
        call: &CallInfo,
        code: EventCode,
        targets: Vec<Target>,
    ) -> Result<()> {
        let event = state.audit_event(
            call,
            Some(&self.principal),
            code,
            targets,
            success(),
            Some(&self.operation),
        )?;
        state.push_audit(&mut self.trail, &event)
    }

    /// The trail, to store with the change.
    pub fn into_trail(self) -> Trail {
        self.trail
    }
}

/// The most events one seal puts in a batch.
pub const SEAL_BATCH_EVENTS: u32 = 10_000;
/// The most batches one sealing round writes (a backlog is worked off over several rounds).
const SEAL_BATCHES_PER_ROUND: usize = 16;

/// When the audit sink keeps a trail in the store, seals it every
/// [`AuditSink::seal_interval`](crate::extensions::AuditSink::seal_interval) while the state
/// lives. Every node of a cluster does it: sealing takes the log's lock, so two nodes never
/// seal one event twice, and a node that dies leaves the job to the others.
pub fn spawn_sealer(state: &crate::state::AppState) {
    let Some(interval) = state.extensions.audit.seal_interval() else { return };
    let weak = std::sync::Arc::downgrade(state);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(state) = weak.upgrade() else { break };
            match seal_round(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(batches = n, "audit trail sealed"),
                Err(e) => tracing::warn!(error = %e, "sealing the audit trail failed"),
            }
        }
    });
}

/// Seals batches while unsealed events remain, at most [`SEAL_BATCHES_PER_ROUND`]; returns how
/// many it sealed. New log leaves wake the checkpointer.
pub async fn seal_round(state: &NodeState) -> Result<usize> {
    let mut sealed = 0;
    while sealed < SEAL_BATCHES_PER_ROUND {
        match state.store.seal_audit_batch(SEAL_BATCH_EVENTS).await? {
            Some(_) => sealed += 1,
            None => break,
        }
    }
    if sealed > 0 {
        state.log_grew.notify_one();
    }
    if let Some(retention) = state.extensions.audit.retention() {
        let keep_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let horizon = state.now_ms().saturating_sub(keep_ms);
        // Logged on its own: a failed expiry does not make the round's sealing look failed,
        // and the next round tries again.
        match state.store.expire_audit_batches(horizon, MAX_EXPIRE_BATCHES).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(batches = n, "audit retention expired the oldest batches"),
            Err(e) => tracing::warn!(error = %e, "audit retention failed"),
        }
    }
    Ok(sealed)
}
