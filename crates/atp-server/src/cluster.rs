//! What changes when the store is shared by the nodes of a cluster (docs/ha.md): one-time
//! values (envelope nonces, presentation challenges, session challenges) are recorded in the
//! store as well as in the node's own memory, so that a value used on one node is refused by
//! every other, and a session challenge issued by one node is known to every other.
//!
//! The node's in-memory cache stays the first check: a replay to the same node is refused
//! without a database round trip, and a full cache still fails closed. Only a value that is new
//! to this node costs one statement ([`atp_store::Store::record_once`]).

use std::time::Duration;

use atp_store::KelChange;

use crate::error::Result;
use crate::state::{AppState, KelCoherence, NodeState};

/// How often a node purges expired records, how many one statement deletes at most, and how
/// many statements one round runs at most (while each deletes a full batch). Under load,
/// records expire faster than one batch per round: a round keeps up with up to
/// `PURGE_BATCH * PURGE_BATCHES_PER_ROUND / PURGE_INTERVAL` (10,000 a second) per node.
const PURGE_INTERVAL: Duration = Duration::from_secs(10);
const PURGE_BATCH: u32 = 1_000;
const PURGE_BATCHES_PER_ROUND: u32 = 100;

/// The digest under which a one-time value is recorded: a domain tag, the scope (what kind of
/// value) and each part length-prefixed, so that no two (scope, parts) share a digest.
fn digest(scope: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(b"atp.replay-guard.v1\0");
    for part in std::iter::once(scope.as_bytes()).chain(parts.iter().copied()) {
        bytes.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        bytes.extend_from_slice(part);
    }
    atp_crypto::sha256(&bytes)
}

/// Records a one-time value for the whole cluster: `Ok(false)` when another node (or this one)
/// already used it and it is still live. Always `Ok(true)` on a node whose store is its own,
/// where the in-memory cache is the whole answer.
pub async fn first_use(
    state: &NodeState,
    scope: &str,
    parts: &[&[u8]],
    keep_until_ms: i64,
    now_ms: i64,
) -> Result<bool> {
    if !state.settings.replay_through_store {
        return Ok(true);
    }
    Ok(state.store.record_once(digest(scope, parts), keep_until_ms, now_ms).await?)
}

/// Whether a value recorded with [`first_use`] under `scope` and `parts` is live at `now_ms`
/// for the whole cluster, without recording it. Always `Ok(false)` on a node whose store is
/// its own: its memory is the whole answer.
pub async fn is_live(state: &NodeState, scope: &str, parts: &[&[u8]], now_ms: i64) -> Result<bool> {
    if !state.settings.replay_through_store {
        return Ok(false);
    }
    Ok(state.store.once_record_live(digest(scope, parts), now_ms).await?)
}

/// Purges expired records every [`PURGE_INTERVAL`], in batches of [`PURGE_BATCH`], while the
/// state lives. Every node does it: deletions are idempotent, and a node that dies leaves the
/// job to the others.
pub fn spawn_purge(state: &AppState) {
    if !state.settings.replay_through_store {
        return;
    }
    let weak = std::sync::Arc::downgrade(state);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PURGE_INTERVAL).await;
            let Some(state) = weak.upgrade() else { break };
            match purge_round(&state).await {
                Ok(n) if n > 0 => tracing::debug!(purged = n, "expired one-time values purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging expired one-time values failed"),
            }
        }
    });
}

/// One purge round: batches of [`PURGE_BATCH`] while each comes back full, at most
/// [`PURGE_BATCHES_PER_ROUND`]; returns how many records it deleted. Only what expired before
/// every node's clock agrees: a node whose clock runs ahead must not purge what a node behind
/// still counts as live.
pub async fn purge_round(state: &NodeState) -> Result<u64> {
    let before = state.now_ms().saturating_sub(state.settings.limits.clock_skew_ms());
    let mut purged = 0;
    for _ in 0..PURGE_BATCHES_PER_ROUND {
        let n = state.store.purge_once_records(before, PURGE_BATCH).await?;
        purged += n;
        if n < u64::from(PURGE_BATCH) {
            break;
        }
    }
    Ok(purged)
}

/// How long the key event log feed task waits before it asks a failed feed again.
const FEED_RETRY_PAUSE: Duration = Duration::from_millis(250);

/// With [`KelCoherence::ChangeFeed`], follows the store's key event log changes while the state
/// lives: each change drops the log from the node's cache, each proof of catching up lets the
/// cache serve unchecked for `max_staleness` more, and a gap (or a failure) forgets the whole
/// cache until the feed has caught up again. The feed proves it has caught up four times per
/// `max_staleness`, so that one late proof does not make reads fall back to head checks.
pub fn spawn_kel_feed(state: &AppState) {
    let KelCoherence::ChangeFeed { max_staleness } = state.caches.kel.coherence() else {
        return;
    };
    let weak = std::sync::Arc::downgrade(state);
    let store = state.store.clone();
    tokio::spawn(async move {
        let mut feed = loop {
            match store.kel_change_feed(max_staleness / 4).await {
                Ok(Some(feed)) => break feed,
                Ok(None) => {
                    tracing::warn!(
                        "the store reports no key event log changes; every read re-checks the head"
                    );
                    return;
                }
                Err(atp_store::StoreError::Closed) => return,
                Err(e) => tracing::warn!(error = %e, "cannot open the key event log feed"),
            }
            tokio::time::sleep(FEED_RETRY_PAUSE).await;
            if weak.strong_count() == 0 {
                return;
            }
        };
        loop {
            let change = feed.next().await;
            let Some(state) = weak.upgrade() else { break };
            let cache = &state.caches.kel;
            match change {
                Ok(KelChange::Changed(did)) => cache.invalidate(&did),
                Ok(KelChange::CaughtUp(at)) => cache.caught_up(at),
                Ok(KelChange::Gap) => cache.forget_all(),
                Err(atp_store::StoreError::Closed) => {
                    // The store is closing: nothing more to follow.
                    cache.forget_all();
                    break;
                }
                Err(e) => {
                    cache.forget_all();
                    drop(state);
                    tracing::warn!(error = %e, "the key event log feed failed; reads re-check heads");
                    tokio::time::sleep(FEED_RETRY_PAUSE).await;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::digest;

    #[test]
    fn digests_separate_scopes_and_parts() {
        let a = digest("envelope", &[b"did:a", b"did:b", b"n"]);
        assert_ne!(a, digest("presentation", &[b"did:a", b"did:b", b"n"]));
        assert_ne!(a, digest("envelope", &[b"did:a", b"did:bn"]));
        assert_ne!(a, digest("envelope", &[b"did:ad", b"id:b", b"n"]));
        assert_eq!(a, digest("envelope", &[b"did:a", b"did:b", b"n"]));
    }
}
