//! The agent's view of the node's transparency log: the node's identity, verified checkpoints, consistency and inclusion proofs.

use super::*;
use atp_core::log_entry::{self, LeafKind};
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
        };
        *cached = Some(id.clone());
        Ok(id)
    }

    /// The node's DID (verified against its own key event log).
    pub async fn node_did(&self) -> Result<String> {
        Ok(self.node_identity().await?.did)
    }

    /// Fetches the latest checkpoint and verifies it: both signature lines under the node's
    /// current key, the expected origin, and consistency (RFC 9162) with the last checkpoint
    /// this agent verified, so that a node cannot rewrite or roll back its log unnoticed.
    pub async fn verified_checkpoint(&self) -> Result<Checkpoint> {
        const OP: &str = "GetCheckpoint";
        let id = self.node_identity().await?;
        let node = &self.node;
        let response = node
            .call(OP, |ch| {
                let req = node.request(v1::GetCheckpointRequest {});
                async move { LogServiceClient::new(ch).get_checkpoint(req).await }
            })
            .await?;
        let note = std::str::from_utf8(&response.checkpoint_note)
            .map_err(|_| Error::misbehaved(OP, "the checkpoint is not UTF-8"))?;
        let checkpoint = atp_core::checkpoint::verify_note_with(note, &id.ed25519, &id.mldsa65)
            .map_err(|e| Error::misbehaved(OP, e))?;
        if checkpoint.origin != id.log_origin {
            return Err(Error::misbehaved(
                OP,
                format!("origin {:?} is not the node's log", checkpoint.origin),
            ));
        }
        let mut last = self.checkpoint.lock().await;
        if let Some(prev) = last.as_ref() {
            self.check_consistency(prev, &checkpoint).await?;
        }
        *last = Some(checkpoint.clone());
        Ok(checkpoint)
    }

    /// Verifies a checkpoint note obtained elsewhere (a file, a witness) against the node's
    /// keys and log origin, without fetching anything but the node's identity.
    pub async fn verify_checkpoint_note(&self, note: &str) -> Result<Checkpoint> {
        let id = self.node_identity().await?;
        let checkpoint = atp_core::checkpoint::verify_note_with(note, &id.ed25519, &id.mldsa65)?;
        if checkpoint.origin != id.log_origin {
            return Err(Error::InvalidArgument(format!(
                "the checkpoint's origin {:?} is not the node's log {:?}",
                checkpoint.origin, id.log_origin
            )));
        }
        Ok(checkpoint)
    }

    async fn check_consistency(&self, old: &Checkpoint, new: &Checkpoint) -> Result<()> {
        const OP: &str = "GetConsistencyProof";
        if new.size < old.size {
            return Err(Error::misbehaved(
                OP,
                format!("the log shrank from {} to {}", old.size, new.size),
            ));
        }
        if old.size == 0 || old.size == new.size {
            let ok = old.size == 0 || old.root_hash == new.root_hash;
            return if ok {
                Ok(())
            } else {
                Err(Error::misbehaved(OP, "two roots for one tree size"))
            };
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
        let path = hashes(OP, &proof.consistency_path)?;
        tlog::verify_consistency(old.size, new.size, &old.root_hash, &new.root_hash, &path)
            .map_err(|e| Error::misbehaved(OP, e))
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
            let checkpoint = self.verified_checkpoint().await?;
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
