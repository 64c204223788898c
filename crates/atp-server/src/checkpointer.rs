//! The checkpointer: signs a C2SP checkpoint of the transparency log with the node key's
//! Ed25519 and ML-DSA-65 components ([`atp_core::checkpoint::sign_note`]) whenever the log
//! grew, and stores it ([`atp_store::Store::put_checkpoint`]).

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

/// Signs and stores a checkpoint of the current log if it is larger than the latest stored
/// one (or none is stored). Returns the new tree size, or `None` when nothing changed.
pub async fn sign_now(state: &AppState) -> Result<Option<u64>> {
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
    state.store.put_checkpoint(note).await?;
    state.extensions.observer.on_domain_event(&DomainEvent::CheckpointSigned { size });
    Ok(Some(size))
}

/// Runs until `shutdown` completes: every `checkpoint_interval`, and soon after the log grew,
/// signs a checkpoint if the log is larger than the latest one. Errors are logged, not fatal;
/// the next round tries again. A final checkpoint is signed on shutdown.
pub async fn run(state: AppState, shutdown: impl Future<Output = ()>) {
    let interval = state.settings.checkpoint_interval;
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
    if let Err(e) = sign_now(&state).await {
        tracing::warn!(error = %e, "signing the final checkpoint failed");
    }
}
