//! The bulk path: many key event appends (with their audit events), evidence and audit events in
//! a few multi-row statements, with the per-op path as the fallback.

use super::*;

// --- The bulk path ------------------------------------------------------------------------------

/// Rows per multi-row statement: at most 8 columns each, so a statement stays under SQLite's
/// historical limit of 999 bound parameters (and far under PostgreSQL's 65535).
const ROWS_PER_STATEMENT: usize = 100;

/// The result of one bulk request, before the commit.
enum BulkResult {
    Kel(Result<AppendedEvent>),
    Evidence(Result<u64>),
    Audit,
}

/// A DID's head as the batch sees it.
struct HeadState {
    head: KelHead,
    deactivated: bool,
}

/// The final identity row of a DID touched by the batch.
struct IdentityUpsert<'a> {
    seq: i64,
    digest: &'a str,
    deactivated: bool,
    /// The inception's `ts` for a new DID; ignored (not updated) for an existing one.
    created: &'a str,
    updated: &'a str,
}

/// Everything the bulk requests of a batch write, accumulated in memory.
#[derive(Default)]
struct BulkRows<'a> {
    leaves: Vec<(i64, LeafKind, Hash, String)>,
    nodes: Vec<(NodeKey, Hash)>,
    events: Vec<(&'a KelAppend, i64)>,
    identities: BTreeMap<&'a str, IdentityUpsert<'a>>,
    new_identities: i64,
    evidence: Vec<(i64, &'a NewEvidence)>,
    /// The audit events of the appends planned, in order.
    audit: Vec<&'a AuditEntry>,
}

impl<'a> BulkRows<'a> {
    fn push_leaf(
        &mut self,
        frontier: &mut Frontier,
        kind: LeafKind,
        data_hash: &Hash,
        reference: String,
    ) -> Result<(u64, i64)> {
        // The index fits: the log is far from 2^63 leaves.
        let index = frontier.size();
        let index_i64 = to_i64(index, "leaf index")?;
        let (appended, nodes) = frontier.append(entry_leaf_hash(kind, data_hash));
        debug_assert_eq!(appended, index);
        self.leaves.push((index_i64, kind, *data_hash, reference));
        self.nodes.extend(nodes);
        Ok((index, index_i64))
    }

    /// Validates a KEL append against the batch's view of the heads and records its rows.
    fn plan_kel(
        &mut self,
        req: &'a KelAppend,
        heads: &mut HashMap<String, HeadState>,
        frontier: &mut Frontier,
    ) -> Result<AppendedEvent> {
        req.check_head(heads.get(&req.did).map(|h| (&h.head, h.deactivated)))?;
        let seq = to_i64(req.sequence, "sequence")?;
        let (log_index, index_i64) =
            self.push_leaf(frontier, LeafKind::Kel, &req.data_hash, req.reference())?;
        self.events.push((req, index_i64));
        let row = IdentityUpsert {
            seq,
            digest: &req.digest,
            deactivated: req.deactivated,
            created: &req.ts,
            updated: &req.ts,
        };
        match self.identities.get_mut(req.did.as_str()) {
            Some(existing) => {
                let created = existing.created;
                *existing = IdentityUpsert { created, ..row };
            }
            None => {
                self.identities.insert(&req.did, row);
            }
        }
        if req.expected.is_none() {
            self.new_identities += 1;
        }
        heads.insert(
            req.did.clone(),
            HeadState {
                head: KelHead { sequence: req.sequence, digest: req.digest.clone() },
                deactivated: req.deactivated,
            },
        );
        Ok(AppendedEvent {
            did: req.did.clone(),
            sequence: req.sequence,
            digest: req.digest.clone(),
            log_index,
        })
    }

    fn plan_evidence(
        &mut self,
        evidence: &'a NewEvidence,
        data_hash: &Hash,
        frontier: &mut Frontier,
    ) -> Result<u64> {
        let (index, index_i64) =
            self.push_leaf(frontier, LeafKind::Evidence, data_hash, evidence.subject.clone())?;
        self.evidence.push((index_i64, evidence));
        Ok(index)
    }

    /// Writes the accumulated rows: a handful of multi-row statements, in foreign-key order.
    async fn flush(&self, conn: &mut SqliteConnection, now: i64) -> Result<()> {
        #[cfg(test)]
        if tests::FAIL_NEXT_BULK_FLUSH.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::corrupt("injected bulk flush failure"));
        }
        for chunk in self.leaves.chunks(ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO tlog_leaves (leaf_index, kind, data_hash, subject_ref, created_at_ms) ",
            );
            qb.push_values(chunk, |mut b, (index, kind, data_hash, reference)| {
                b.push_bind(*index)
                    .push_bind(kind.as_str())
                    .push_bind(data_hash.to_vec())
                    .push_bind(reference.as_str())
                    .push_bind(now);
            });
            qb.build().execute(&mut *conn).await?;
        }
        for chunk in self.nodes.chunks(ROWS_PER_STATEMENT) {
            let mut rows = Vec::with_capacity(chunk.len());
            for ((level, index), hash) in chunk {
                rows.push((i64::from(*level), to_i64(*index, "node index")?, hash.to_vec()));
            }
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO tlog_nodes (tree_level, node_index, hash) ",
            );
            qb.push_values(rows, |mut b, (level, index, hash)| {
                b.push_bind(level).push_bind(index).push_bind(hash);
            });
            qb.build().execute(&mut *conn).await?;
        }
        let identities: Vec<_> = self.identities.iter().collect();
        for chunk in identities.chunks(ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO identities (did, seq, digest, deactivated, created, updated, \
                 created_at_ms, updated_at_ms) ",
            );
            qb.push_values(chunk, |mut b, (did, row)| {
                b.push_bind(**did)
                    .push_bind(row.seq)
                    .push_bind(row.digest)
                    .push_bind(row.deactivated)
                    .push_bind(row.created)
                    .push_bind(row.updated)
                    .push_bind(now)
                    .push_bind(now);
            });
            // An existing DID keeps its creation fields; each DID appears once per statement.
            qb.push(
                " ON CONFLICT (did) DO UPDATE SET seq = excluded.seq, digest = excluded.digest, \
                 deactivated = excluded.deactivated, updated = excluded.updated, \
                 updated_at_ms = excluded.updated_at_ms",
            );
            qb.build().execute(&mut *conn).await?;
        }
        for chunk in self.events.chunks(ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO kel_events (did, seq, event_type, digest, event_json, \
                 event_deflate, log_index, stored_at_ms) ",
            );
            let mut rows = Vec::with_capacity(chunk.len());
            for (req, log_index) in chunk {
                rows.push((req, to_i64(req.sequence, "sequence")?, *log_index));
            }
            qb.push_values(rows, |mut b, (req, seq, log_index)| {
                b.push_bind(req.did.as_str())
                    .push_bind(seq)
                    .push_bind(req.event_type)
                    .push_bind(req.digest.as_str())
                    .push_bind("")
                    .push_bind(req.deflated.as_slice())
                    .push_bind(log_index)
                    .push_bind(now);
            });
            qb.build().execute(&mut *conn).await?;
        }
        for chunk in self.evidence.chunks(ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO evidence (log_index, subject, evidence_type, body, created_at_ms) ",
            );
            qb.push_values(chunk, |mut b, (index, ev)| {
                b.push_bind(*index)
                    .push_bind(ev.subject.as_str())
                    .push_bind(ev.evidence_type.as_str())
                    .push_bind(ev.body.as_slice())
                    .push_bind(now);
            });
            qb.build().execute(&mut *conn).await?;
        }
        for chunk in self.audit.chunks(ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO audit_events (time_ms, code, body, digest) ",
            );
            qb.push_values(chunk, |mut b, entry| {
                b.push_bind(entry.time_ms())
                    .push_bind(entry.code())
                    .push_bind(entry.body())
                    .push_bind(&entry.digest()[..]);
            });
            qb.build().execute(&mut *conn).await?;
        }
        if self.new_identities > 0 {
            sqlx::query(
                "UPDATE store_counters SET counter_value = counter_value + $1 \
                 WHERE counter_name = 'identities'",
            )
            .bind(self.new_identities)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Loads the heads of `dids` inside the write transaction.
async fn load_heads(
    conn: &mut SqliteConnection,
    dids: &BTreeSet<&str>,
) -> Result<HashMap<String, HeadState>> {
    let dids: Vec<&str> = dids.iter().copied().collect();
    let mut heads = HashMap::with_capacity(dids.len());
    for chunk in dids.chunks(ROWS_PER_STATEMENT * 5) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT did, seq, digest, deactivated FROM identities WHERE did IN (",
        );
        let mut list = qb.separated(", ");
        for did in chunk {
            list.push_bind(did.to_string());
        }
        list.push_unseparated(")");
        let rows: Vec<(String, i64, String, bool)> =
            qb.build_query_as().fetch_all(&mut *conn).await?;
        for (did, seq, digest, deactivated) in rows {
            let head = KelHead { sequence: to_u64(seq, "sequence")?, digest };
            heads.insert(did, HeadState { head, deactivated });
        }
    }
    Ok(heads)
}

/// Plans and writes the bulk requests in one transaction; `Err` if the transaction failed as
/// a whole (nothing was committed).
async fn try_bulk(pool: &SqlitePool, ops: &[WriteOp]) -> Result<Vec<BulkResult>, String> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(|e| format!("begin: {e}"))?;
    let mut frontier =
        load_frontier(&mut tx).await.map_err(|e| format!("reading the log frontier: {e}"))?;
    let dids: BTreeSet<&str> =
        ops.iter().filter_map(|op| op.kel_append().map(|(req, _)| req.did.as_str())).collect();
    let mut heads =
        load_heads(&mut tx, &dids).await.map_err(|e| format!("reading KEL heads: {e}"))?;
    let now = now_ms();
    let mut rows = BulkRows::default();
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        if let Some((req, audit)) = op.kel_append() {
            let planned = rows.plan_kel(req, &mut heads, &mut frontier);
            if planned.is_ok() {
                // Written in this transaction: the append and its events, or neither.
                rows.audit.extend(audit);
            }
            results.push(BulkResult::Kel(planned));
            continue;
        }
        results.push(match op {
            WriteOp::AppendEvidence { evidence, data_hash, .. } => {
                BulkResult::Evidence(rows.plan_evidence(evidence, data_hash, &mut frontier))
            }
            WriteOp::AppendAudit { audit, .. } => {
                rows.audit.extend(audit);
                BulkResult::Audit
            }
            _ => return Err("a non-bulk request on the bulk path".into()),
        });
    }
    rows.flush(&mut tx, now).await.map_err(|e| format!("bulk write: {e}"))?;
    tx.commit().await.map_err(|e| format!("commit: {e}"))?;
    tracing::trace!(requests = ops.len(), log_size = frontier.size(), "atp-store bulk commit");
    Ok(results)
}

/// Commits bulk requests; if the bulk transaction fails as a whole, runs them again one
/// savepoint each, so that one bad request cannot fail the others.
pub(super) async fn commit_bulk(pool: &SqlitePool, ops: Vec<WriteOp>) {
    match try_bulk(pool, &ops).await {
        Ok(results) => {
            for (op, result) in ops.into_iter().zip(results) {
                let op = match op {
                    WriteOp::Audited { op, .. } => *op,
                    op => op,
                };
                match (op, result) {
                    (WriteOp::AppendKel { reply, .. }, BulkResult::Kel(r)) => drop(reply.send(r)),
                    (WriteOp::AppendEvidence { reply, .. }, BulkResult::Evidence(r)) => {
                        drop(reply.send(r))
                    }
                    (WriteOp::AppendAudit { reply, .. }, BulkResult::Audit) => {
                        drop(reply.send(Ok(())))
                    }
                    (op, _) => op.fail(StoreError::corrupt("bulk result out of step")),
                }
            }
        }
        Err(reason) => {
            tracing::warn!(requests = ops.len(), %reason, "atp-store bulk batch failed; retrying isolated");
            commit_isolated(pool, ops).await;
        }
    }
}
