//! When, and on which node, the trust snapshot is computed (docs/ha.md, "Trust
//! recomputation").
//!
//! - **A single node** computes its own snapshot every
//!   [`crate::ServerSettings::trust_recompute_interval`] ([`crate::trust::recompute_now`]).
//! - **In a cluster** ([`crate::ServerSettings::singleton_lease`] set) one node computes: the
//!   holder of the lease [`TRUST_LEASE`]. Every round it takes or renews the lease, computes,
//!   serves the result, and stores it for the others with a write fenced by the lease
//!   ([`atp_store::Store::put_trust_snapshot_fenced`]): a holder paused past its lease cannot
//!   overwrite a newer snapshot. The lease lasts three intervals, since a computation over a
//!   large graph takes seconds.
//! - **The other nodes** read the stored revision every round (one point read) and load a
//!   newer snapshot. The stored bytes are parsed strictly (`atp_core::trust_snapshot`); a
//!   snapshot that does not parse is never served. A node computes its own instead when no
//!   snapshot is stored yet, when the stored one does not parse, and when the newest it has is
//!   older than [`STALE_AFTER_INTERVALS`] intervals (the holder cannot store, say), so the
//!   staleness of every node's answers is bounded whatever the holder does.
//! - **`RecomputeTrust`** on any node computes now and serves the result; the node stores it
//!   only if it holds, or can take, the lease.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use atp_store::{Lease, MAX_LEASE_TTL_MS, MIN_LEASE_TTL_MS};
use atp_trust::Snapshot;

use crate::error::{Result, ServerError};
use crate::state::{AppState, NodeState};
use crate::trust::recompute_now;

/// The lease of the one node of a cluster that computes trust.
pub const TRUST_LEASE: &str = "trust-recompute";

/// A node whose newest snapshot (its own or the stored one) is older than this many intervals
/// computes its own.
pub const STALE_AFTER_INTERVALS: u32 = 3;

/// What one round of the job did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    /// This node computed, and (in a cluster) stored the snapshot as the lease's holder.
    Computed,
    /// This node computed for itself only: it does not hold the lease, and no usable stored
    /// snapshot was fresh enough.
    ComputedLocally,
    /// This node loaded a newer stored snapshot.
    Loaded,
    /// The stored snapshot is the one this node serves already.
    Unchanged,
}

/// The trust lease's duration: three recompute intervals, within the store's bounds.
fn lease_ttl_ms(state: &NodeState) -> u64 {
    let interval = u64::try_from(state.settings.trust_recompute_interval.as_millis())
        .unwrap_or(MAX_LEASE_TTL_MS);
    interval.saturating_mul(3).clamp(MIN_LEASE_TTL_MS, MAX_LEASE_TTL_MS)
}

/// Takes or renews the trust lease: `None` while another node holds it, or on a single node.
async fn acquire(state: &NodeState) -> Result<Option<Lease>> {
    let Some(cluster) = &state.settings.singleton_lease else { return Ok(None) };
    let lease = state
        .store
        .acquire_lease(TRUST_LEASE.to_owned(), cluster.holder.clone(), lease_ttl_ms(state))
        .await?;
    Ok(lease)
}

/// One round of the job (the schedule runs one every interval).
pub async fn round(state: &NodeState) -> Result<Round> {
    if state.settings.singleton_lease.is_none() {
        recompute_now(state).await?;
        return Ok(Round::Computed);
    }
    match acquire(state).await? {
        Some(lease) => {
            let snapshot = recompute_now(state).await?;
            share(state, &snapshot, lease).await?;
            Ok(Round::Computed)
        }
        None => follow(state).await,
    }
}

/// `RecomputeTrust`: computes now and serves the result; in a cluster, stores it too when this
/// node holds, or can take, the trust lease.
pub async fn recompute_and_share(state: &NodeState) -> Result<Arc<Snapshot>> {
    let snapshot = recompute_now(state).await?;
    if let Some(lease) = acquire(state).await? {
        share(state, &snapshot, lease).await?;
    }
    Ok(snapshot)
}

/// Stores `snapshot` under `lease` and remembers its revision as the one this node serves.
async fn share(state: &NodeState, snapshot: &Arc<Snapshot>, lease: Lease) -> Result<()> {
    let encoded = {
        let snapshot = snapshot.clone();
        tokio::task::spawn_blocking(move || snapshot.encode())
            .await
            .map_err(|e| ServerError::internal(format!("trust snapshot encoding task: {e}")))?
            .map_err(|e| ServerError::internal(format!("trust snapshot: {e}")))?
    };
    let bytes = encoded.len();
    let revision =
        state.store.put_trust_snapshot_fenced(snapshot.computed_at_ms(), encoded, lease).await?;
    state.trust.loaded_revision.store(revision, Ordering::SeqCst);
    tracing::debug!(revision, bytes, "trust snapshot stored for the cluster");
    Ok(())
}

/// A node without the lease: loads a newer stored snapshot, or computes its own when there is
/// none it can use that is fresh enough.
async fn follow(state: &NodeState) -> Result<Round> {
    let now = state.now_ms();
    let interval_ms =
        i64::try_from(state.settings.trust_recompute_interval.as_millis()).unwrap_or(i64::MAX);
    let stale_before = now.saturating_sub(interval_ms.saturating_mul(STALE_AFTER_INTERVALS.into()));
    let served_at = state.trust.snapshot().map(|s| s.computed_at_ms());
    let stored = state.store.trust_snapshot_revision().await?;
    if let Some((revision, computed_at_ms)) = stored {
        let newer = served_at.is_none_or(|at| computed_at_ms > at);
        if revision != state.trust.loaded_revision.load(Ordering::SeqCst) && newer {
            match load(state).await {
                Ok(true) => return Ok(Round::Loaded),
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    reason = e.reason(),
                    "the stored trust snapshot cannot be used; computing here: {e}"
                ),
            }
        }
    }
    let newest = state.trust.snapshot().map(|s| s.computed_at_ms());
    if newest.is_none_or(|at| at < stale_before) {
        recompute_now(state).await?;
        return Ok(Round::ComputedLocally);
    }
    Ok(Round::Unchanged)
}

/// Reads, parses and serves the stored snapshot if it is newer than the one served; returns
/// whether it did.
async fn load(state: &NodeState) -> Result<bool> {
    let Some(stored) = state.store.trust_snapshot().await? else { return Ok(false) };
    let revision = stored.revision;
    let snapshot = tokio::task::spawn_blocking(move || Snapshot::decode(&stored.body))
        .await
        .map_err(|e| ServerError::internal(format!("trust snapshot parsing task: {e}")))?
        .map_err(|e| ServerError::internal(format!("stored trust snapshot: {e}")))?;
    let _job = state.trust.job.lock().await;
    if state.trust.snapshot().is_some_and(|s| s.computed_at_ms() >= snapshot.computed_at_ms()) {
        return Ok(false);
    }
    state.trust.publish(Arc::new(snapshot));
    state.trust.loaded_revision.store(revision, Ordering::SeqCst);
    tracing::debug!(revision, "trust snapshot loaded from the store");
    Ok(true)
}

/// Starts the node's schedule (once per state; later calls do nothing): one round at once, then
/// one every [`crate::ServerSettings::trust_recompute_interval`]. A zero interval schedules
/// nothing ([`recompute_now`] only). The task holds the state weakly and ends when the state is
/// dropped.
pub fn spawn(state: &AppState) {
    let interval = state.settings.trust_recompute_interval;
    if interval.is_zero() || state.trust.scheduled.swap(true, Ordering::SeqCst) {
        return;
    }
    let weak: Weak<NodeState> = Arc::downgrade(state);
    tokio::spawn(async move {
        loop {
            {
                let Some(state) = weak.upgrade() else { break };
                if let Err(e) = round(&state).await {
                    tracing::warn!(reason = e.reason(), "trust computation failed: {e}");
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
}

/// Gives the trust lease up if this node holds it (on shutdown), so that another node computes
/// at its next round rather than after the lease expired.
pub async fn release(state: &NodeState) -> Result<()> {
    if let Some(lease) = acquire(state).await? {
        state.store.release_lease(lease).await?;
    }
    Ok(())
}
