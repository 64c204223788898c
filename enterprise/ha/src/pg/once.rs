//! Group commit of one-time value records (`Store::record_once`): the records queued while one
//! statement commits make up the next, written by one multi-row `INSERT … ON CONFLICT` in a
//! transaction of its own (one WAL flush for all of them). The rule is the lone statement's
//! ([`atp_store::backend::RECORD_ONCE_SQL`]): a digest is recorded unless a record of it is
//! still live, and of two records of the same digest exactly one is the first.
//!
//! - **Order.** The rows go in digest order, so that groups of two nodes that share digests
//!   take their row locks in the same order and never deadlock.
//! - **Duplicates in one batch.** PostgreSQL refuses to update one row twice in one statement,
//!   so a batch sends each digest once; the first request for it gets the statement's answer,
//!   and every later one in the batch is a replay of it.
//! - **Expiry.** A stored record that expired may be replaced. A batch judges expiry at the
//!   earliest `now` of its requests: a record that expired between that instant and a later
//!   request's `now` (a few milliseconds) counts as live, which refuses, never accepts.
//! - **Failure.** If the statement fails, every request of the batch fails (nothing of it was
//!   recorded) and the callers refuse the value they were checking: fail closed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use atp_core::tlog::Hash;
use atp_store::StoreError;
use tokio::sync::{mpsc, oneshot};

use super::Result;
use super::failover::Primary;

/// The most records in one statement.
const MAX_BATCH: usize = 512;
/// The queue's capacity; callers wait (back-pressure) when it is full.
const QUEUE: usize = 2048;

/// The batch statement: `$1` the digests (distinct), `$2` their keep-until instants, `$3` the
/// batch's `now`. Returns the digests it recorded.
const RECORD_MANY_SQL: &str = "INSERT INTO replay_guard (digest, keep_until_ms) \
     SELECT * FROM UNNEST($1::BYTEA[], $2::INT8[]) \
     ON CONFLICT (digest) DO UPDATE SET keep_until_ms = excluded.keep_until_ms \
     WHERE replay_guard.keep_until_ms < $3 \
     RETURNING digest";

/// One queued record and where its answer goes.
pub(super) struct Job {
    pub(super) digest: Hash,
    pub(super) keep_until_ms: i64,
    pub(super) now_ms: i64,
    pub(super) reply: oneshot::Sender<Result<bool>>,
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

async fn commit(primary: &Arc<Primary>, jobs: Vec<Job>) {
    let mut first_of: HashMap<Hash, usize> = HashMap::with_capacity(jobs.len());
    let mut rows: Vec<(Hash, i64)> = Vec::with_capacity(jobs.len());
    for (index, job) in jobs.iter().enumerate() {
        if let std::collections::hash_map::Entry::Vacant(slot) = first_of.entry(job.digest) {
            slot.insert(index);
            rows.push((job.digest, job.keep_until_ms));
        }
    }
    // In digest order: two nodes whose groups share digests lock their rows in the same order,
    // so they cannot deadlock (arrival order could, and an attacker chooses arrival order).
    rows.sort_unstable();
    let digests: Vec<Vec<u8>> = rows.iter().map(|(digest, _)| digest.to_vec()).collect();
    let keep_until: Vec<i64> = rows.iter().map(|(_, keep)| *keep).collect();
    let now_ms = jobs.iter().map(|job| job.now_ms).min().unwrap_or(i64::MIN);
    // The statement never waits longer than three statement timeouts, even on a socket that the
    // network dropped without a word.
    let bound = primary.config().statement_timeout.saturating_mul(3);
    let pool = primary.pool();
    let statement = sqlx::query_scalar::<_, Vec<u8>>(RECORD_MANY_SQL)
        .bind(&digests)
        .bind(&keep_until)
        .bind(now_ms)
        .fetch_all(&pool);
    let outcome = match tokio::time::timeout(bound, statement).await {
        Ok(Ok(recorded)) => Ok(recorded),
        Ok(Err(e)) => Err(StoreError::from(e)),
        Err(_) => Err(StoreError::Database(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("recording one-time values took longer than {bound:?}"),
        )))),
    };
    match outcome {
        Ok(recorded) => {
            let recorded: HashSet<Vec<u8>> = recorded.into_iter().collect();
            for (index, job) in jobs.into_iter().enumerate() {
                let first = first_of.get(&job.digest) == Some(&index);
                let answer = first && recorded.contains(&job.digest[..]);
                // A caller that went away is not waiting for the answer.
                let _ = job.reply.send(Ok(answer));
            }
        }
        Err(e) => {
            primary.on_error(&e);
            let reason = format!("recording one-time values failed: {e}");
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::WriteFailed(reason.clone())));
            }
        }
    }
}
