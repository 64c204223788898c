//! The node's audit trail (enterprise `[audit]`, docs/audit.md): pages of events and batches,
//! keyed hashes for searching, and the verification of the whole sealed trail. Calls need the
//! `audit.read` permission (role `auditor` or `admin`) through the agent's bearer token.

use atp_core::audit::{AuditBatch, GENESIS, SealedRow, Tamper, batch_data_hash, verify_batch};
use atp_core::log_entry::{LeafKind, entry_leaf_hash};
use atp_core::tlog::Hash;
use atp_grpc::v1;
use atp_grpc::v1::audit_service_client::AuditServiceClient;

use crate::agent::Agent;
use crate::error::{Error, Result};

/// The page size the SDK asks for.
const PAGE: u32 = 1000;

/// What [`Agent::verify_audit_trail`] checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditTrailReport {
    /// Sealed batches verified.
    pub batches: u64,
    /// Events in them (those of expired batches included).
    pub events: u64,
    /// Of the batches, how many retention expired: their events are gone, their heads and log
    /// leaves verified.
    pub expired_batches: u64,
    /// The head of the last batch ([`GENESIS`] when none is sealed).
    pub head: Hash,
    /// The last batch's log leaf index, when there is one.
    pub last_log_index: Option<u64>,
}

fn hash(op: &'static str, bytes: &[u8]) -> Result<Hash> {
    bytes.try_into().map_err(|_| Error::misbehaved(op, "a hash is not 32 bytes"))
}

fn batch_of(op: &'static str, b: &v1::AuditBatchRecord) -> Result<AuditBatch> {
    Ok(AuditBatch {
        number: b.number,
        first_seq: b.first_seq,
        last_seq: b.last_seq,
        count: b.count,
        previous: hash(op, &b.previous)?,
        head: hash(op, &b.head)?,
    })
}

impl Agent {
    /// A page of audit events (see `ListAuditEventsRequest`).
    pub async fn audit_events(
        &self,
        request: v1::ListAuditEventsRequest,
    ) -> Result<Vec<v1::AuditEventRecord>> {
        let node = self.node();
        let response = node
            .call("ListAuditEvents", |ch| {
                let req = node.request(request.clone());
                async move { AuditServiceClient::new(ch).list_audit_events(req).await }
            })
            .await?;
        Ok(response.events)
    }

    /// A page of sealed batches after number `after`.
    pub async fn audit_batches(
        &self,
        after: u64,
        page_size: u32,
    ) -> Result<Vec<v1::AuditBatchRecord>> {
        let node = self.node();
        let response = node
            .call("ListAuditBatches", |ch| {
                let req =
                    node.request(v1::ListAuditBatchesRequest { after_batch: after, page_size });
                async move { AuditServiceClient::new(ch).list_audit_batches(req).await }
            })
            .await?;
        Ok(response.batches)
    }

    /// The keyed hash the trail stores for `value` (the node's own tenant), to search for it.
    pub async fn hash_audit_value(&self, value: &str) -> Result<String> {
        let node = self.node();
        let response = node
            .call("HashAuditValue", |ch| {
                let req = node.request(v1::HashAuditValueRequest {
                    value: value.to_owned(),
                    tenant: String::new(),
                });
                async move { AuditServiceClient::new(ch).hash_audit_value(req).await }
            })
            .await?;
        Ok(response.hashed)
    }

    /// Every event of `batch`, in sequence order: at most one more than its count (enough to
    /// show it holds too many), each page strictly after the one before, so that a node cannot
    /// keep a verifier reading forever.
    /// Whether batch `number`, listed with its events kept, has expired since, as retention
    /// does it: together with the batch before it, which retention expires first.
    async fn expired_since_listed(&self, number: u64) -> Result<bool> {
        let first = number.saturating_sub(1).max(1);
        let now = self.audit_batches(first - 1, 2).await?;
        let expected = (first..=number).count();
        Ok(now.len() >= expected
            && now
                .iter()
                .take(expected)
                .zip(first..=number)
                .all(|(b, n)| b.number == n && b.expired_at_unix_ms != 0))
    }

    /// The batch's `audit-batch` leaf is in the transparency log, at the stored index, proven
    /// against a checkpoint the agent verified.
    async fn check_batch_leaf(
        &self,
        batch: &AuditBatch,
        record: &v1::AuditBatchRecord,
    ) -> Result<()> {
        let leaf = entry_leaf_hash(LeafKind::AuditBatch, &batch_data_hash(batch));
        let included = match self.verify_leaf_inclusion(leaf).await {
            Ok(included) => included,
            Err(Error::Rejected { reason: Some(r), .. }) if r == "TLOG_LEAF_NOT_FOUND" => {
                return Err(Tamper::Batch {
                    batch: batch.number,
                    reason: "the transparency log has no leaf for it".into(),
                }
                .into());
            }
            Err(e) => return Err(e),
        };
        if included.leaf_index != record.log_index {
            return Err(Tamper::Batch {
                batch: batch.number,
                reason: format!(
                    "its leaf is at {}, not at the stored {}",
                    included.leaf_index, record.log_index
                ),
            }
            .into());
        }
        Ok(())
    }

    async fn batch_events(&self, batch: &AuditBatch) -> Result<Vec<v1::AuditEventRecord>> {
        const OP: &str = "ListAuditEvents";
        let mut events: Vec<v1::AuditEventRecord> = Vec::new();
        // From the batch's first event: the node scans from there, not from the trail's start.
        let mut after_seq = batch.first_seq.saturating_sub(1);
        loop {
            let request = v1::ListAuditEventsRequest {
                after_seq,
                page_size: PAGE,
                batch: batch.number,
                ..Default::default()
            };
            let page = self.audit_events(request).await?;
            let short = page.len() < PAGE as usize;
            for event in page {
                if event.seq <= after_seq {
                    return Err(Error::misbehaved(OP, "events out of sequence order"));
                }
                after_seq = event.seq;
                events.push(event);
            }
            if short || events.len() as u64 > batch.count {
                return Ok(events);
            }
        }
    }

    /// Verifies the sealed audit trail from its first batch: batch numbers without gaps, each
    /// batch chained on from the one before, each recomputed from its events with atp-core's
    /// rules ([`verify_batch`], which names the first changed, deleted or moved event), and each
    /// committed by its `audit-batch` leaf in the transparency log, proven against a checkpoint
    /// the agent verified. Events not yet sealed are not covered. Batches whose events retention
    /// removed are checked by head and leaf only, and must all come before the kept ones.
    pub async fn verify_audit_trail(&self) -> Result<AuditTrailReport> {
        const OP: &str = "ListAuditBatches";
        let mut report = AuditTrailReport {
            batches: 0,
            events: 0,
            expired_batches: 0,
            head: GENESIS,
            last_log_index: None,
        };
        // The batches sealed when the verification starts; later ones (the node seals the
        // events of this very verification, too) are left to the next run.
        let mut records = Vec::new();
        loop {
            let after = records.last().map_or(0, |b: &v1::AuditBatchRecord| b.number);
            let page = self.audit_batches(after, PAGE).await?;
            if page.is_empty() {
                break;
            }
            let mut previous = after;
            for b in &page {
                if b.number <= previous {
                    return Err(Error::misbehaved(OP, "batches out of order"));
                }
                previous = b.number;
            }
            let short = page.len() < PAGE as usize;
            records.extend(page);
            if short {
                break;
            }
        }
        for record in &records {
            let batch = batch_of(OP, record)?;
            if batch.number != report.batches + 1 {
                return Err(Tamper::Batch {
                    batch: report.batches + 1,
                    reason: format!("missing: the next stored batch is {}", batch.number),
                }
                .into());
            }
            if batch.previous != report.head {
                return Err(Tamper::Batch {
                    batch: batch.number,
                    reason: "it does not chain on from the batch before".into(),
                }
                .into());
            }
            if record.expired_at_unix_ms != 0 {
                // Retention removes the oldest batches only: one expired after a batch whose
                // events were kept hides a deletion.
                if report.expired_batches != report.batches {
                    return Err(Tamper::Batch {
                        batch: batch.number,
                        reason: "expired after a batch whose events are kept".into(),
                    }
                    .into());
                }
                report.expired_batches += 1;
            } else {
                let events = self.batch_events(&batch).await?;
                if events.len() as u64 != batch.count
                    && self.expired_since_listed(batch.number).await?
                {
                    // Retention expired it while this run read the batches before it: the
                    // node's sealing round does that to the oldest batches. Head and leaf are
                    // still checked below.
                    report.expired_batches += 1;
                    report.batches += 1;
                    report.events += batch.count;
                    report.head = batch.head;
                    report.last_log_index = Some(record.log_index);
                    self.check_batch_leaf(&batch, record).await?;
                    continue;
                }
                let rows = events
                    .iter()
                    .map(|e| {
                        Ok(SealedRow {
                            seq: e.seq,
                            body: &e.event_json,
                            digest: hash("ListAuditEvents", &e.digest)?,
                            chain: hash("ListAuditEvents", &e.chain)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                verify_batch(&batch, &rows)?;
            }
            self.check_batch_leaf(&batch, record).await?;
            report.batches += 1;
            report.events += batch.count;
            report.head = batch.head;
            report.last_log_index = Some(record.log_index);
        }
        Ok(report)
    }
}

impl Agent {
    /// A compliance report the node computed from its audit trail and signed as a Verifiable
    /// Credential (`GetComplianceReport`); its signature is verified here, under the node's key,
    /// before it is returned.
    pub async fn compliance_report(
        &self,
        request: v1::GetComplianceReportRequest,
    ) -> Result<serde_json::Value> {
        const OP: &str = "GetComplianceReport";
        let node = self.node();
        let response = node
            .call(OP, |ch| {
                let req = node.request(request.clone());
                async move { AuditServiceClient::new(ch).get_compliance_report(req).await }
            })
            .await?;
        let report: serde_json::Value = serde_json::from_slice(&response.report_json)
            .map_err(|e| Error::misbehaved(OP, format!("not JSON: {e}")))?;
        let node_did = self.node_did().await?;
        if report.get("issuer").and_then(serde_json::Value::as_str) != Some(node_did.as_str()) {
            return Err(Error::misbehaved(OP, "the report is not issued by the node"));
        }
        self.verify_credential(&report).await?;
        Ok(report)
    }
}
