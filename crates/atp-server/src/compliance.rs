//! Compliance reports (docs/compliance.md): computed from the audit trail and the store, never
//! typed in, and signed by the node as a Verifiable Credential.
//!
//! A report covers one framework (SOC 2, HIPAA or GDPR) over a period `[from, to)`. For each
//! control it gives the full population (every event of the codes the control rests on, counted)
//! and a reproducible sample: the events whose `SHA-256(seed || event digest)` are smallest,
//! where the seed is `SHA-256("atp/compliance-sample/1\n" || framework || from || to || control)`.
//! Anyone who holds the population can draw the same sample. The report also names the period's
//! sealed batches and two tree heads: the tree before the period's first batch, and the node's
//! latest signed checkpoint, with the consistency proof between them.

use std::collections::{BTreeMap, BinaryHeap};

use atp_core::audit::AuditEvent;
use atp_core::vc::DateTimeStamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{Result, ServerError};
use crate::state::NodeState;

/// The most events one report reads; a longer period is refused (`FIELD_INVALID`, narrow it).
pub const MAX_REPORT_EVENTS: u64 = 5_000_000;
/// The events sampled per control.
pub const SAMPLE_SIZE: usize = 25;
/// The most detailed changes a report lists per control (the population counts all of them).
pub const MAX_LISTED_CHANGES: usize = 200;
/// Refusals from one client that make it anomalous (CC7.2).
pub const ANOMALOUS_REFUSALS: u64 = 10;

/// A compliance framework.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    /// SOC 2 (Trust Services Criteria, common criteria).
    Soc2,
    /// HIPAA Security Rule, §164.312 technical safeguards.
    Hipaa,
    /// GDPR, Articles 30 and 17.
    Gdpr,
}

impl Framework {
    /// Parses `soc2`, `hipaa` or `gdpr`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "soc2" => Some(Framework::Soc2),
            "hipaa" => Some(Framework::Hipaa),
            "gdpr" => Some(Framework::Gdpr),
            _ => None,
        }
    }

    /// The name in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Framework::Soc2 => "soc2",
            Framework::Hipaa => "hipaa",
            Framework::Gdpr => "gdpr",
        }
    }

    /// The controls: id, title, and the event codes of their population (empty: every event).
    pub fn controls(&self) -> &'static [(&'static str, &'static str, &'static [&'static str])] {
        match self {
            Framework::Soc2 => &[
                (
                    "CC6.1-CC6.3",
                    "Logical access: who holds which role, and when roles were granted or removed",
                    &["role_bindings.changed"],
                ),
                (
                    "CC7.2",
                    "Monitoring: failed and anomalous authentications and denied requests",
                    &["authn.failed", "authz.denied"],
                ),
                (
                    "CC8.1",
                    "Change management: trust-anchor, role-binding and key changes, before and after",
                    &["anchors.changed", "role_bindings.changed", "key_event.accepted"],
                ),
            ],
            Framework::Hipaa => &[
                (
                    "164.312(b)",
                    "Audit controls: every event recorded, sealed and committed to the log",
                    &[],
                ),
                (
                    "164.312(c)(1)",
                    "Integrity: changes to credentials' status, keys and trust anchors",
                    &[
                        "credential.issued",
                        "credential.status_changed",
                        "status_update.applied",
                        "key_event.accepted",
                        "anchors.changed",
                    ],
                ),
                (
                    "164.312(d)",
                    "Person or entity authentication: sign-ins, accepted and refused credentials",
                    &["authn.succeeded", "authn.failed", "session.issued"],
                ),
            ],
            Framework::Gdpr => &[
                ("Art. 30", "Records of processing activities", &[]),
                ("Art. 17", "Erasure log (right to erasure)", &["subject.erased"]),
            ],
        }
    }
}

/// One control's population while the trail is read.
struct Population {
    id: &'static str,
    title: &'static str,
    codes: &'static [&'static str],
    seed: [u8; 32],
    count: u64,
    by_code: BTreeMap<String, u64>,
    /// The sample so far: the smallest ranks (a max-heap of SAMPLE_SIZE).
    sample: BinaryHeap<([u8; 32], u64, String)>,
}

impl Population {
    fn covers(&self, code: &str) -> bool {
        self.codes.is_empty() || self.codes.contains(&code)
    }

    fn add(&mut self, seq: u64, digest: &[u8; 32], event: &AuditEvent) {
        self.count += 1;
        *self.by_code.entry(event.code.clone()).or_default() += 1;
        let rank: [u8; 32] =
            Sha256::new().chain_update(self.seed).chain_update(digest).finalize().into();
        if self.sample.len() < SAMPLE_SIZE {
            self.sample.push((rank, seq, event.id.clone()));
        } else if self.sample.peek().is_some_and(|top| rank < top.0) {
            self.sample.pop();
            self.sample.push((rank, seq, event.id.clone()));
        }
    }
}

fn day_of(ms: i64) -> String {
    let stamp = DateTimeStamp::from_unix(ms.div_euclid(1000)).to_string();
    stamp.get(..10).unwrap_or(&stamp).to_owned()
}

fn targets(event: &AuditEvent) -> Vec<Value> {
    event.target.iter().map(|t| json!({"kind": t.kind, "id": t.id})).collect()
}

/// Reads the trail of `[from_ms, to_ms)` and the store, and returns the unsigned report (the
/// credential subject).
pub async fn compute(
    state: &NodeState,
    framework: Framework,
    from_ms: i64,
    to_ms: i64,
) -> Result<Value> {
    if from_ms >= to_ms {
        return Err(ServerError::field("to_unix_ms", "the period must end after it starts"));
    }
    let mut populations: Vec<Population> = framework
        .controls()
        .iter()
        .map(|(id, title, codes)| Population {
            id,
            title,
            codes,
            seed: Sha256::new()
                .chain_update(b"atp/compliance-sample/1\n")
                .chain_update(framework.as_str())
                .chain_update(from_ms.to_be_bytes())
                .chain_update(to_ms.to_be_bytes())
                .chain_update(id.as_bytes())
                .finalize()
                .into(),
            count: 0,
            by_code: BTreeMap::new(),
            sample: BinaryHeap::new(),
        })
        .collect();

    // The anchor set before the period, for the first change's "before".
    let mut anchors_before: Option<Vec<String>> = None;
    let mut after_seq = 0;
    loop {
        let query = atp_store::AuditQuery {
            after_seq,
            limit: atp_store::audit::MAX_AUDIT_PAGE,
            code: Some("anchors.changed".into()),
            to_ms: Some(from_ms),
            ..Default::default()
        };
        let page = state.store.list_audit_events(query).await?;
        let Some(last) = page.last() else { break };
        after_seq = last.seq;
        let event = AuditEvent::parse(&last.body)?;
        anchors_before = Some(anchor_dids(&event));
    }

    let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    let mut unsealed = 0u64;
    let mut refusals_by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let mut refusals_by_client: BTreeMap<String, u64> = BTreeMap::new();
    let mut role_changes: Vec<Value> = Vec::new();
    let mut changes: Vec<Value> = Vec::new();
    let mut after_seq = 0;
    loop {
        let query = atp_store::AuditQuery {
            after_seq,
            limit: atp_store::audit::MAX_AUDIT_PAGE,
            from_ms: Some(from_ms),
            to_ms: Some(to_ms),
            ..Default::default()
        };
        let page = state.store.list_audit_events(query).await?;
        let Some(last) = page.last() else { break };
        after_seq = last.seq;
        total += page.len() as u64;
        if total > MAX_REPORT_EVENTS {
            return Err(ServerError::field(
                "from_unix_ms",
                format!("the period holds more than {MAX_REPORT_EVENTS} events: narrow it"),
            ));
        }
        for stored in &page {
            // The node signs what it read: a row that is not the event it was stored as is not
            // counted silently (a sealed row's chain is what `atp audit verify` checks).
            if atp_core::audit::event_digest(&stored.body) != stored.digest {
                return Err(ServerError::Core(atp_core::CoreError::AuditEventInvalid(format!(
                    "event {} does not hash to its stored digest: run `atp audit verify`",
                    stored.seq
                ))));
            }
            if stored.sealed.is_none() {
                unsealed += 1;
            }
            // Its digest matched: the bytes are the stored event's, so a plain parse suffices
            // (no second canonical encoding per event, a third of a report's time at 1M events).
            let event: AuditEvent = serde_json::from_slice(&stored.body).map_err(|e| {
                ServerError::Core(atp_core::CoreError::AuditEventInvalid(format!(
                    "event {}: {e}",
                    stored.seq
                )))
            })?;
            *per_day.entry(day_of(event.time)).or_default() += 1;
            for p in populations.iter_mut().filter(|p| p.covers(&event.code)) {
                p.add(stored.seq, &stored.digest, &event);
            }
            match event.code.as_str() {
                "authn.failed" | "authz.denied" => {
                    let reason = event.outcome.reason.clone().unwrap_or_default();
                    *refusals_by_reason.entry(reason).or_default() += 1;
                    let client = event.client.ip.clone().unwrap_or_else(|| "unknown".into());
                    *refusals_by_client.entry(client).or_default() += 1;
                }
                "role_bindings.changed" if role_changes.len() < MAX_LISTED_CHANGES => {
                    role_changes.push(json!({
                        "seq": stored.seq, "time": event.time, "actor": event.actor.id,
                        "bindings": targets(&event),
                    }));
                }
                "anchors.changed" => {
                    let after = anchor_dids(&event);
                    if changes.len() < MAX_LISTED_CHANGES {
                        changes.push(json!({
                            "seq": stored.seq, "time": event.time, "code": event.code,
                            "actor": event.actor.id, "before": anchors_before, "after": after,
                        }));
                    }
                    anchors_before = Some(after);
                }
                "key_event.accepted" if changes.len() < MAX_LISTED_CHANGES => {
                    let kind = event.target.iter().find(|t| t.kind == "event_type");
                    // Inceptions are registrations; rotations and deactivations change keys.
                    if kind.is_some_and(|k| k.id != "icp") {
                        changes.push(json!({
                            "seq": stored.seq, "time": event.time, "code": event.code,
                            "actor": event.actor.id, "targets": targets(&event),
                        }));
                    }
                }
                _ => {}
            }
        }
    }

    let mut controls = Vec::new();
    for p in populations {
        let mut sample: Vec<(u64, String)> =
            p.sample.into_iter().map(|(_, seq, id)| (seq, id)).collect();
        sample.sort();
        let mut control = json!({
            "id": p.id,
            "title": p.title,
            "codes": p.codes,
            "population": p.count,
            "byCode": p.by_code,
            "sample": sample.iter().map(|(seq, id)| json!({"seq": seq, "id": id})).collect::<Vec<_>>(),
        });
        let extra = match p.id {
            "CC6.1-CC6.3" => {
                let bindings = state.store.list_role_bindings().await?;
                let holders: Vec<Value> = bindings
                    .bindings
                    .iter()
                    .map(|b| json!({"subject": b.subject, "role": b.role, "domain": b.domain}))
                    .collect();
                json!({"roleHoldersNow": holders, "policyRevision": bindings.revision,
                       "changes": role_changes})
            }
            "CC7.2" => {
                let anomalous: Vec<Value> = refusals_by_client
                    .iter()
                    .filter(|(_, n)| **n >= ANOMALOUS_REFUSALS)
                    .map(|(client, n)| json!({"client": client, "refusals": n}))
                    .collect();
                json!({"byReason": refusals_by_reason, "anomalousClients": anomalous,
                       "anomalousThreshold": ANOMALOUS_REFUSALS})
            }
            "CC8.1" | "164.312(c)(1)" => json!({"changes": changes}),
            _ => Value::Null,
        };
        if let (Value::Object(c), Value::Object(e)) = (&mut control, extra) {
            c.extend(e);
        }
        controls.push(control);
    }

    Ok(json!({
        "type": "ComplianceReport",
        "framework": framework.as_str(),
        "period": {"from": from_ms, "to": to_ms},
        "node": state.node_did,
        "events": total,
        "unsealedEvents": unsealed,
        "eventsPerDay": per_day.iter().map(|(day, n)| json!({"day": day, "count": n})).collect::<Vec<_>>(),
        "controls": controls,
        "log": tree_heads(state, from_ms, to_ms).await?,
    }))
}

fn anchor_dids(event: &AuditEvent) -> Vec<String> {
    event.target.iter().filter(|t| t.kind == "did").map(|t| t.id.clone()).collect()
}

/// The period's sealed batches, the tree before the first of them, the latest signed
/// checkpoint, and the consistency proof between the two.
async fn tree_heads(state: &NodeState, from_ms: i64, to_ms: i64) -> Result<Value> {
    let mut batches = Vec::new();
    let mut after = 0;
    loop {
        let page = state.store.list_audit_batches(after, atp_store::audit::MAX_AUDIT_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.batch.number;
        batches.extend(
            page.into_iter().filter(|b| b.sealed_at_ms >= from_ms && b.sealed_at_ms < to_ms),
        );
    }
    let Some(checkpoint) = state.store.latest_checkpoint().await? else {
        return Ok(json!({"batches": [], "start": null, "end": null}));
    };
    let start_size = batches.first().map_or(checkpoint.size, |b| b.log_index);
    let start_size = start_size.min(checkpoint.size);
    let start_root = state.store.root_at(start_size).await?;
    let proof = if start_size == 0 || start_size == checkpoint.size {
        Vec::new()
    } else {
        state.store.consistency_proof(start_size, checkpoint.size).await?
    };
    Ok(json!({
        "batches": batches.iter().map(|b| json!({
            "number": b.batch.number, "count": b.batch.count, "head": hex::encode(b.batch.head),
            "logIndex": b.log_index, "sealedAt": b.sealed_at_ms,
        })).collect::<Vec<_>>(),
        "start": {"size": start_size, "rootHash": hex::encode(start_root)},
        "end": {"size": checkpoint.size, "rootHash": hex::encode(checkpoint.root_hash),
                "checkpoint": checkpoint.note},
        "consistencyProof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    }))
}

/// The report as a credential the node signs: issuer the node, subject the report.
pub fn credential(state: &NodeState, subject: Value) -> Result<Value> {
    let valid_from = DateTimeStamp::from_unix(state.now_ms().div_euclid(1000)).to_string();
    let unsigned = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential", "AtpComplianceReport"],
        "issuer": state.node_did,
        "validFrom": valid_from,
        "credentialSubject": subject,
    });
    crate::credential::sign_as_node(state, &unsigned)
}
