//! Group commit of key event appends: the appends queued while a batch commits make up the next
//! one, written in one transaction (one hold of the log's row lock, one WAL flush) with a few
//! multi-row statements, whatever its size. Each append is judged in memory against the
//! batch's view of the heads, in queue order, with the same rule as a lone append
//! ([`KelAppend::check_head`]); one that fails is answered with its own error and writes
//! nothing. If the transaction fails as a whole, every append of the batch is retried alone,
//! so that one bad request cannot fail the others.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use atp_core::log_entry::LeafKind;
use atp_store::backend::{KelAppend, to_i64, to_u64};
use atp_store::{AppendedEvent, AuditEntry, KelHead, StoreError};
use tokio::sync::{mpsc, oneshot};

use super::Result;
use super::failover::{self, Primary};
use super::write::{self, StagedLeaves, Write};

/// The most appends in one transaction.
pub(super) const MAX_BATCH: usize = 256;
/// The queue's capacity; appenders wait (back-pressure) when it is full.
const QUEUE: usize = 1024;

/// One queued append, its audit events (stored with it, or neither), and where its answer
/// goes.
pub(super) struct Job {
    pub(super) req: KelAppend,
    pub(super) audit: Vec<AuditEntry>,
    pub(super) reply: oneshot::Sender<Result<AppendedEvent>>,
}

/// Starts the batching task; it ends when every sender is gone.
pub(super) fn spawn(primary: Arc<Primary>) -> mpsc::Sender<Job> {
    let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
    tokio::spawn(async move {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
            commit(&primary, std::mem::take(&mut jobs)).await;
        }
    });
    tx
}

/// A batch failure that retrying append by append would only repeat: the lock could not be
/// had in time (57014, statement timeout; 55P03, lock not available) or the transaction was
/// refused for serialisation (40001).
fn is_contention(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Database(db))
        if db.code().is_some_and(|c| matches!(&*c, "57014" | "55P03" | "40001")))
}

async fn commit(primary: &Arc<Primary>, jobs: Vec<Job>) {
    // A batch never waits longer than three statement timeouts, even on a socket that the
    // network dropped without a word; then it counts as a lost connection.
    let bound = primary.config().statement_timeout.saturating_mul(3);
    let outcome = match tokio::time::timeout(bound, try_batch(primary, &jobs)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(StoreError::Database(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("a batch took longer than {bound:?}"),
        )))),
    };
    match outcome {
        Ok(results) => {
            for (Job { reply, .. }, result) in jobs.into_iter().zip(results) {
                // A caller that went away is not waiting for the answer.
                let _ = reply.send(result);
            }
        }
        Err(e) if failover::is_connection_error(&e) || is_contention(&e) => {
            // The server is gone or demoted, or the lock was not to be had: retrying now would
            // only wait again. Every append of the batch fails (nothing of it committed), a
            // search for the primary starts if the server is gone, and callers retry.
            primary.on_error(&e);
            let reason = format!("the batch's transaction failed: {e}");
            for Job { reply, .. } in jobs {
                let _ = reply.send(Err(StoreError::WriteFailed(reason.clone())));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, appends = jobs.len(), "a batch failed; retrying each alone");
            for Job { req, audit, reply } in jobs {
                // A caller that went away is not waiting: its append is not retried.
                if !reply.is_closed() {
                    let _ = reply.send(alone(primary, req, &audit).await);
                }
            }
        }
    }
}

/// One append and its audit events in a transaction of their own.
async fn alone(
    primary: &Arc<Primary>,
    req: KelAppend,
    audit: &[AuditEntry],
) -> Result<AppendedEvent> {
    let mut w = Write::begin(&primary.pool()).await?;
    let out = write::append_kel(&mut w, req).await?;
    super::audit::insert_entries(w.connection(), audit).await?;
    w.commit().await?;
    Ok(out)
}

/// A DID's head as the batch sees it.
struct Head {
    head: KelHead,
    deactivated: bool,
}

/// The final identity row of a DID the batch touched.
struct IdentityRow<'a> {
    seq: i64,
    digest: &'a str,
    deactivated: bool,
    created: &'a str,
    updated: &'a str,
}

/// Runs the batch; `Err` only when the transaction failed as a whole.
async fn try_batch(primary: &Arc<Primary>, jobs: &[Job]) -> Result<Vec<Result<AppendedEvent>>> {
    let mut w = Write::begin(&primary.pool()).await?;
    let dids: Vec<&str> = jobs.iter().map(|job| job.req.did.as_str()).collect();
    let rows: Vec<(String, i64, String, bool)> = sqlx::query_as(
        "SELECT did, seq, digest, deactivated FROM identities WHERE did = ANY($1::TEXT[])",
    )
    .bind(&dids)
    .fetch_all(w.connection())
    .await?;
    let mut heads = HashMap::with_capacity(rows.len());
    for (did, seq, digest, deactivated) in rows {
        let head = KelHead { sequence: to_u64(seq, "sequence")?, digest };
        heads.insert(did, Head { head, deactivated });
    }

    let mut staged = StagedLeaves::default();
    let mut identities: BTreeMap<&str, IdentityRow<'_>> = BTreeMap::new();
    let mut new_identities = 0i64;
    let mut events: Vec<(&KelAppend, i64, i64)> = Vec::new();
    let mut results = Vec::with_capacity(jobs.len());
    let mut audit: Vec<AuditEntry> = Vec::new();
    for Job { req, audit: job_audit, .. } in jobs {
        let found = heads.get(&req.did).map(|h| (&h.head, h.deactivated));
        if let Err(e) = req.check_head(found) {
            results.push(Err(e));
            continue;
        }
        let seq = match to_i64(req.sequence, "sequence") {
            Ok(seq) => seq,
            Err(e) => {
                results.push(Err(e));
                continue;
            }
        };
        let log_index =
            w.stage_leaf(&mut staged, LeafKind::Kel, &req.data_hash, Some(req.reference()))?;
        events.push((req, seq, to_i64(log_index, "log index")?));
        let created = match identities.get(req.did.as_str()) {
            Some(existing) => existing.created,
            None => &req.ts,
        };
        identities.insert(
            &req.did,
            IdentityRow {
                seq,
                digest: &req.digest,
                deactivated: req.deactivated,
                created,
                updated: &req.ts,
            },
        );
        if req.expected.is_none() {
            new_identities += 1;
        }
        let head = KelHead { sequence: req.sequence, digest: req.digest.clone() };
        heads.insert(req.did.clone(), Head { head, deactivated: req.deactivated });
        // Written in this transaction: the append and its events, or neither.
        audit.extend(job_audit.iter().cloned());
        results.push(Ok(AppendedEvent {
            did: req.did.clone(),
            sequence: req.sequence,
            digest: req.digest.clone(),
            log_index,
        }));
    }
    if events.is_empty() {
        return Ok(results);
    }
    w.write_staged(staged).await?;
    let now = w.now();
    // An existing DID keeps its creation fields; each DID appears once.
    sqlx::query(
        "INSERT INTO identities (did, seq, digest, deactivated, created, updated, created_at_ms, \
         updated_at_ms) SELECT d, s, g, x, c, u, $7, $7 FROM UNNEST($1::TEXT[], $2::BIGINT[], \
         $3::TEXT[], $4::BOOLEAN[], $5::TEXT[], $6::TEXT[]) AS t(d, s, g, x, c, u) \
         ON CONFLICT (did) DO UPDATE SET seq = excluded.seq, digest = excluded.digest, \
         deactivated = excluded.deactivated, updated = excluded.updated, \
         updated_at_ms = excluded.updated_at_ms",
    )
    .bind(identities.keys().copied().collect::<Vec<_>>())
    .bind(identities.values().map(|r| r.seq).collect::<Vec<_>>())
    .bind(identities.values().map(|r| r.digest).collect::<Vec<_>>())
    .bind(identities.values().map(|r| r.deactivated).collect::<Vec<_>>())
    .bind(identities.values().map(|r| r.created).collect::<Vec<_>>())
    .bind(identities.values().map(|r| r.updated).collect::<Vec<_>>())
    .bind(now)
    .execute(w.connection())
    .await?;
    sqlx::query(
        "INSERT INTO kel_events (did, seq, event_type, digest, event_deflate, log_index, \
         stored_at_ms) SELECT d, s, t, g, e, l, $7 FROM UNNEST($1::TEXT[], $2::BIGINT[], \
         $3::TEXT[], $4::TEXT[], $5::BYTEA[], $6::BIGINT[]) AS r(d, s, t, g, e, l)",
    )
    .bind(events.iter().map(|(r, ..)| r.did.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|(_, seq, _)| *seq).collect::<Vec<_>>())
    .bind(events.iter().map(|(r, ..)| r.event_type).collect::<Vec<_>>())
    .bind(events.iter().map(|(r, ..)| r.digest.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|(r, ..)| r.deflated.as_slice()).collect::<Vec<_>>())
    .bind(events.iter().map(|(.., index)| *index).collect::<Vec<_>>())
    .bind(now)
    .execute(w.connection())
    .await?;
    super::audit::insert_entries(w.connection(), &audit).await?;
    if new_identities > 0 {
        sqlx::query(
            "UPDATE store_counters SET counter_value = counter_value + $1 \
             WHERE counter_name = 'identities'",
        )
        .bind(new_identities)
        .execute(w.connection())
        .await?;
    }
    w.commit().await?;
    Ok(results)
}
