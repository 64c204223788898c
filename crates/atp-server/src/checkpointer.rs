//! The checkpointer: signs a C2SP checkpoint of the transparency log with the node key's
//! Ed25519 and ML-DSA-65 components ([`atp_core::checkpoint::sign_note`]) whenever the log
//! grew, and stores it ([`atp_store::Store::put_checkpoint`]).
//!
//! In a cluster ([`crate::ServerSettings::singleton_lease`]) one node at a time signs: the
//! holder of the lease [`CHECKPOINT_LEASE`], renewed every round and stored with the
//! checkpoint in one fenced write, so that a holder that was paused past its lease cannot
//! publish after another node took over (docs/ha.md).

use std::future::Future;

use atp_core::checkpoint::{Checkpoint, VerifierKey, sign_note};
use atp_crypto::PublicKey;

use crate::error::{Result, ServerError};
use crate::extensions::DomainEvent;
use crate::state::AppState;

/// The (Ed25519, ML-DSA-65) public keys that verify the node's checkpoints, under the key name
/// [`key_name`].
pub fn verifier_keys(state: &AppState) -> Result<(VerifierKey, VerifierKey)> {
    let (mldsa, ed) = state
        .node_key
        .public_key_ref()
        .components()
        .ok_or_else(|| ServerError::internal("the node key is not a composite key"))?;
    let name = key_name(state);
    Ok((VerifierKey::new(name, ed)?, VerifierKey::new(name, mldsa)?))
}

/// The component public keys (Ed25519, ML-DSA-65) of the node key.
pub fn component_keys(state: &AppState) -> Result<(PublicKey, PublicKey)> {
    let (mldsa, ed) = state
        .node_key
        .public_key_ref()
        .components()
        .ok_or_else(|| ServerError::internal("the node key is not a composite key"))?;
    Ok((ed, mldsa))
}

/// The signed-note key name of the checkpoints: the log origin.
pub fn key_name(state: &AppState) -> &str {
    &state.log_origin
}

/// The lease of the one checkpoint signer of a cluster.
pub const CHECKPOINT_LEASE: &str = "checkpoint-signer";

/// Signs and stores a checkpoint of the current log if it is larger than the latest stored
/// one (or none is stored). Returns the new tree size, or `None` when nothing changed. In a
/// cluster, first takes or renews the checkpoint lease, and does nothing (`None`) while
/// another node holds it.
pub async fn sign_now(state: &AppState) -> Result<Option<u64>> {
    let Some(lease) = &state.settings.singleton_lease else {
        return sign_under(state, None).await;
    };
    let ttl_ms = u64::try_from(lease.ttl.as_millis()).unwrap_or(u64::MAX);
    let held = state
        .store
        .acquire_lease(CHECKPOINT_LEASE.to_owned(), lease.holder.clone(), ttl_ms)
        .await?;
    match held {
        Some(held) => sign_under(state, Some(held)).await,
        None => Ok(None),
    }
}

/// Gives the checkpoint lease up if this node holds it (on shutdown), so that another node
/// takes over without waiting for it to expire.
pub async fn release(state: &AppState) -> Result<()> {
    let Some(lease) = &state.settings.singleton_lease else { return Ok(()) };
    let ttl_ms = u64::try_from(lease.ttl.as_millis()).unwrap_or(u64::MAX);
    let held = state
        .store
        .acquire_lease(CHECKPOINT_LEASE.to_owned(), lease.holder.clone(), ttl_ms)
        .await?;
    if let Some(held) = held {
        state.store.release_lease(held).await?;
    }
    Ok(())
}

async fn sign_under(state: &AppState, lease: Option<atp_store::Lease>) -> Result<Option<u64>> {
    let size = state.store.log_size().await?;
    let latest = state.store.latest_checkpoint().await?;
    if latest.as_ref().is_some_and(|cp| cp.size >= size) {
        return Ok(None);
    }
    let root = state.store.root_at(size).await?;
    let (mldsa, ed) = state
        .node_key
        .components()
        .ok_or_else(|| ServerError::internal("the node key is not a composite key"))?;
    let checkpoint = Checkpoint::new(state.log_origin.clone(), size, root);
    let note = sign_note(&checkpoint, key_name(state), ed, mldsa)?;
    match lease {
        Some(lease) => state.store.put_checkpoint_fenced(note, lease).await?,
        None => state.store.put_checkpoint(note).await?,
    };
    state.extensions.observer.on_domain_event(&DomainEvent::CheckpointSigned { size });
    Ok(Some(size))
}

/// Runs until `shutdown` completes: every `checkpoint_interval`, and soon after the log grew,
/// signs a checkpoint if the log is larger than the latest one. Errors are logged, not fatal;
/// the next round tries again. A final checkpoint is signed on shutdown.
pub async fn run(state: AppState, shutdown: impl Future<Output = ()>) {
    let interval = state.settings.checkpoint_interval;
    // Witnesses are asked in a task of their own: a slow one never delays a checkpoint.
    let (stop_witnesses, witnesses_stopped) = tokio::sync::oneshot::channel::<()>();
    if !state.settings.witnesses.is_empty() {
        tokio::spawn(crate::witnesses::run(
            state.store.clone(),
            state.settings.witnesses.clone(),
            interval,
            async {
                let _ = witnesses_stopped.await;
            },
        ));
    }
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = sign_now(&state).await {
            tracing::error!(error = %e, "signing a checkpoint failed");
        }
    }
    drop(stop_witnesses);
    if let Err(e) = sign_now(&state).await {
        tracing::warn!(error = %e, "signing the final checkpoint failed");
    }
    if let Err(e) = release(&state).await {
        tracing::warn!(error = %e, "releasing the checkpoint lease failed");
    }
}
