//! The agent's view of the node's transparency log: the node's identity, verified checkpoints, consistency and inclusion proofs.

use super::*;
use atp_core::log_entry::{self, LeafKind};
use atp_core::log_evidence::LogEvidence;
use atp_core::tlog;
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_grpc::v1::log_service_client::LogServiceClient;

impl Agent {
    // ---- Transparency log -----------------------------------------------------------------

    /// The node's identity, verified: its DID's log, and the checkpoint keys derived from the
    /// node's current composite key (never taken from the node's word alone).
    pub(super) async fn node_identity(&self) -> Result<NodeIdentity> {
        let mut cached = self.node_identity.lock().await;
        if let Some(id) = cached.as_ref() {
            return Ok(id.clone());
        }
        const OP: &str = "GetNodeInfo";
        let node = &self.node;
        let info = node
            .call(OP, |ch| {
                let req = node.request(v1::GetNodeInfoRequest {});
                async move { AdminServiceClient::new(ch).get_node_info(req).await }
            })
            .await?;
        if let Some(pinned) = &self.options.pinned_node_did
            && pinned != &info.node_did
        {
            return Err(Error::misbehaved(
                OP,
                format!("node DID {} is not the pinned {pinned}", info.node_did),
            ));
        }
        atp_core::did::parse_did_atp(&info.node_did).map_err(|e| Error::misbehaved(OP, e))?;
        let events = self.fetch_kel(&info.node_did).await?;
        let state = KeyEventLog::default().verify_did(&info.node_did, &events)?;
        let (mldsa, ed) = state
            .current_key
            .components()
            .ok_or_else(|| Error::misbehaved(OP, "the node key is not composite"))?;
        let bad = |e: CoreError| Error::misbehaved(OP, e);
        let id = NodeIdentity {
            did: info.node_did.clone(),
            ed25519: VerifierKey::new(&info.log_origin, ed).map_err(bad)?,
            mldsa65: VerifierKey::new(&info.log_origin, mldsa).map_err(bad)?,
            log_origin: info.log_origin,
            kel: events,
        };
        *cached = Some(id.clone());
        Ok(id)
    }

    /// The node's checkpoint verifier keys, Ed25519 then ML-DSA-65, as C2SP verifier key
    /// strings (`<origin>+<key ID>+<key>`): derived from the node's verified key event log,
    /// they are what a witness is configured with (docs/operations.md "Witnesses").
    pub async fn checkpoint_verifier_keys(&self) -> Result<[String; 2]> {
        let id = self.node_identity().await?;
        Ok([id.ed25519.to_vkey(), id.mldsa65.to_vkey()])
    }

    /// The node's DID (verified against its own key event log).
    pub async fn node_did(&self) -> Result<String> {
        Ok(self.node_identity().await?.did)
    }

    /// Fetches the latest checkpoint and verifies it: both signature lines under the node's
    /// current key, the expected origin, and consistency (RFC 9162) with the largest checkpoint
    /// this agent verified before, so that a node cannot rewrite or roll back its log
    /// unnoticed. That checkpoint is kept in the agent's home (docs/protocol.md §E4), so the
    /// check holds across restarts.
    pub async fn verified_checkpoint(&self) -> Result<Checkpoint> {
        Ok(self.verified_checkpoint_note().await?.0)
    }

    /// [`Agent::verified_checkpoint`], with the signed note itself (to keep, or to compare with
    /// another client through [`Agent::gossip_checkpoint`]).
    pub async fn verified_checkpoint_note(&self) -> Result<(Checkpoint, String)> {
        const OP: &str = "GetCheckpoint";
        let id = self.node_identity().await?;
        // Held across the fetch: two concurrent calls on one agent could otherwise commit
        // their answers out of order and mistake the log's growth for a shrink.
        let mut last = self.checkpoint.lock().await;
        let node = &self.node;
        let response = node
            .call(OP, |ch| {
                let req = node.request(v1::GetCheckpointRequest {});
                async move { LogServiceClient::new(ch).get_checkpoint(req).await }
            })
            .await?;
        let note = String::from_utf8(response.checkpoint_note)
            .map_err(|_| Error::misbehaved(OP, "the checkpoint is not UTF-8"))?;
        let checkpoint = atp_core::checkpoint::verify_note_with(&note, &id.ed25519, &id.mldsa65)
            .map_err(|e| Error::misbehaved(OP, e))?;
        if checkpoint.origin != id.log_origin {
            return Err(Error::misbehaved(
                OP,
                format!("origin {:?} is not the node's log", checkpoint.origin),
            ));
        }
        if let Some(policy) = &self.options.witnesses {
            policy.check(&note)?;
        }
        let seen = SeenCheckpoint { checkpoint, note };
        if last.is_none() {
            *last = self.remembered_checkpoint(&id)?;
        }
        if let Some(prev) = last.as_ref() {
            self.check_consistency(&id, prev, &seen).await?;
        }
        let grew = last.as_ref().is_none_or(|p| seen.checkpoint.size > p.checkpoint.size);
        if grew {
            // Another process on this agent may have kept a larger one meanwhile; never
            // replace it with a smaller one (each write is atomic, so the file always holds a
            // whole note). Only its size matters here: its signatures are checked whenever
            // it is loaded, so they are not verified again on every growth.
            if self.kept_size(&id)?.is_none_or(|size| size < seen.checkpoint.size) {
                self.dir.write_checkpoint(&memory_key(&id), &seen.note)?;
            }
            *last = Some(seen.clone());
        }
        Ok((seen.checkpoint, seen.note))
    }

    /// The checkpoint kept in the agent's home for this node's log, verified again under the
    /// node's current key: a file that does not verify is refused, never silently replaced.
    fn remembered_checkpoint(&self, id: &NodeIdentity) -> Result<Option<SeenCheckpoint>> {
        let Some(note) = self.dir.read_checkpoint(&memory_key(id))? else { return Ok(None) };
        let checkpoint = atp_core::checkpoint::verify_note_with(&note, &id.ed25519, &id.mldsa65)
            .ok()
            .filter(|c| c.origin == id.log_origin)
            .ok_or_else(|| {
                Error::home(
                    self.dir.path().join("checkpoints"),
                    "the checkpoint kept for this node does not verify under the node's key",
                )
            })?;
        Ok(Some(SeenCheckpoint { checkpoint, note }))
    }

    /// The tree size of the checkpoint kept in the agent's home for this node's log, read
    /// without checking its signatures.
    fn kept_size(&self, id: &NodeIdentity) -> Result<Option<u64>> {
        let Some(note) = self.dir.read_checkpoint(&memory_key(id))? else { return Ok(None) };
        let size = atp_core::checkpoint::SignedNote::parse(&note)
            .and_then(|n| Checkpoint::parse_body(&n.text))
            .map_err(|e| Error::home(self.dir.path().join("checkpoints"), e))?
            .size;
        Ok(Some(size))
    }

    /// Verifies a checkpoint note obtained elsewhere (a file, a witness) against the node's
    /// keys and origin. Consistency with this agent's view is [`Agent::gossip_checkpoint`].
    pub async fn verify_checkpoint_note(&self, note: &str) -> Result<Checkpoint> {
        let id = self.node_identity().await?;
        let checkpoint = atp_core::checkpoint::verify_note_with(note, &id.ed25519, &id.mldsa65)?;
        if checkpoint.origin != id.log_origin {
            return Err(Error::InvalidArgument(format!(
                "the checkpoint's origin {:?} is not the node's log {:?}",
                checkpoint.origin, id.log_origin
            )));
        }
        if let Some(policy) = &self.options.witnesses {
            policy.check(note)?;
        }
        Ok(checkpoint)
    }

    /// Compares a checkpoint another client saw (`peer_note`) with this agent's own latest
    /// view of the log: both must be signed by the node, and one tree must extend the other
    /// (same size and root, or a consistency proof from the node). A split view is
    /// [`Error::LogInconsistent`], whose evidence verifies offline. Returns both checkpoints,
    /// this agent's first.
    pub async fn gossip_checkpoint(&self, peer_note: &str) -> Result<(Checkpoint, Checkpoint)> {
        let peer = self.verify_checkpoint_note(peer_note).await?;
        let (own, own_note) = self.verified_checkpoint_note().await?;
        let id = self.node_identity().await?;
        let own_seen = SeenCheckpoint { checkpoint: own.clone(), note: own_note };
        let peer_seen = SeenCheckpoint { checkpoint: peer.clone(), note: peer_note.to_owned() };
        let (older, newer) =
            if peer.size <= own.size { (&peer_seen, &own_seen) } else { (&own_seen, &peer_seen) };
        self.prove_extends(&id, older, newer, "gossip").await?;
        Ok((own, peer))
    }

    /// Checks that `new`, seen after `old`, extends it; otherwise the evidence of both.
    async fn check_consistency(
        &self,
        id: &NodeIdentity,
        old: &SeenCheckpoint,
        new: &SeenCheckpoint,
    ) -> Result<()> {
        if new.checkpoint.size < old.checkpoint.size {
            let observed = format!(
                "the log shrank from {} to {} leaves (an older checkpoint replayed, or a log cut \
                 short)",
                old.checkpoint.size, new.checkpoint.size
            );
            return Err(inconsistent(id, old, new, None, observed));
        }
        self.prove_extends(id, old, new, "checkpoint").await
    }

    /// Checks that the tree of `small` is a prefix of the tree of `large` (`small.size ≤
    /// large.size`); otherwise the evidence of both. A node that does not answer the proof
    /// request is an error of its own, and nothing is learnt.
    async fn prove_extends(
        &self,
        id: &NodeIdentity,
        small: &SeenCheckpoint,
        large: &SeenCheckpoint,
        context: &str,
    ) -> Result<()> {
        const OP: &str = "GetConsistencyProof";
        let (old, new) = (&small.checkpoint, &large.checkpoint);
        if old.size == new.size {
            if old.root_hash == new.root_hash {
                return Ok(());
            }
            let observed = format!("{context}: two roots for tree size {}", old.size);
            return Err(inconsistent(id, small, large, None, observed));
        }
        if old.size == 0 {
            return Ok(());
        }
        let node = &self.node;
        let proof = node
            .call(OP, |ch| {
                let req = node.request(v1::GetConsistencyProofRequest {
                    first_tree_size: old.size,
                    second_tree_size: new.size,
                });
                async move { LogServiceClient::new(ch).get_consistency_proof(req).await }
            })
            .await?;
        let Ok(path) = hashes(OP, &proof.consistency_path) else {
            let observed = format!(
                "{context}: the consistency proof from {} to {} leaves is malformed",
                old.size, new.size
            );
            return Err(inconsistent(id, small, large, None, observed));
        };
        match tlog::verify_consistency(old.size, new.size, &old.root_hash, &new.root_hash, &path) {
            Ok(()) => Ok(()),
            Err(e) => {
                let observed = format!(
                    "{context}: the tree of {} leaves does not extend the tree of {}: {e}",
                    new.size, old.size
                );
                Err(inconsistent(id, small, large, Some(&path), observed))
            }
        }
    }

    /// Verifies that a key event is in the node's transparency log: the SDK computes the leaf
    /// from the event itself (docs/protocol.md §E3), fetches an inclusion proof against a
    /// checkpoint it verified ([`Agent::verified_checkpoint`]) and checks it. A fresh event may
    /// wait for the next checkpoint, up to [`AgentOptions::inclusion_wait`].
    pub async fn verify_inclusion(&self, event: &SignedEvent) -> Result<VerifiedInclusion> {
        let leaf_hash =
            log_entry::entry_leaf_hash(LeafKind::Kel, &log_entry::kel_data_hash(event)?);
        self.verify_leaf_inclusion(leaf_hash).await
    }

    /// Verifies that the leaf `leaf_hash` (a `leaf_hash(entry)` of docs/protocol.md §E3) is in
    /// the node's transparency log, as [`Agent::verify_inclusion`] does for a key event.
    pub async fn verify_leaf_inclusion(&self, leaf_hash: tlog::Hash) -> Result<VerifiedInclusion> {
        const OP: &str = "GetInclusionProof";
        let deadline = Instant::now() + self.options.inclusion_wait;
        loop {
            let checkpoint = match self.verified_checkpoint().await {
                Ok(cp) => cp,
                // A checkpoint signed a moment ago waits for its witnesses' cosignatures.
                Err(Error::Protocol(CoreError::WitnessQuorum { .. }))
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let node = &self.node;
            let result = node
                .call(OP, |ch| {
                    let req = node.request(v1::GetInclusionProofRequest {
                        leaf: Some(v1::get_inclusion_proof_request::Leaf::LeafHash(
                            leaf_hash.to_vec(),
                        )),
                        tree_size: checkpoint.size,
                    });
                    async move { LogServiceClient::new(ch).get_inclusion_proof(req).await }
                })
                .await;
            let proof = match result {
                Ok(p) => p,
                Err(Error::Rejected { reason: Some(r), .. })
                    if (r == "TLOG_LEAF_NOT_FOUND" || r == "TLOG_INDEX_OUT_OF_RANGE")
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if proof.leaf_hash != leaf_hash || proof.tree_size != checkpoint.size {
                return Err(Error::misbehaved(OP, "the proof is for another leaf or tree size"));
            }
            let path = hashes(OP, &proof.inclusion_path)?;
            tlog::verify_inclusion(
                proof.leaf_index,
                checkpoint.size,
                &leaf_hash,
                &path,
                &checkpoint.root_hash,
            )
            .map_err(|e| Error::misbehaved(OP, e))?;
            return Ok(VerifiedInclusion { leaf_index: proof.leaf_index, leaf_hash, checkpoint });
        }
    }
}

/// A checkpoint this agent verified, with the note the node signed.
#[derive(Clone, Debug)]
pub(super) struct SeenCheckpoint {
    checkpoint: Checkpoint,
    note: String,
}

/// What names the kept checkpoint: the node's DID and its log's origin, so that a node reset
/// under a new identity (or a configured origin reused) never meets another node's memory.
fn memory_key(id: &NodeIdentity) -> String {
    format!("{}\n{}", id.did, id.log_origin)
}

/// The evidence that the node signed `earlier` and then `later`, which cannot both be true.
fn inconsistent(
    id: &NodeIdentity,
    earlier: &SeenCheckpoint,
    later: &SeenCheckpoint,
    path: Option<&[tlog::Hash]>,
    observed: String,
) -> Error {
    let evidence =
        LogEvidence::new(&id.did, id.kel.clone(), &earlier.note, &later.note, path, observed);
    Error::LogInconsistent(Box::new(evidence))
}
