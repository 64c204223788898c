//! `atp.v1.LogService`: checkpoints, proofs and entries of the transparency log.
//!
//! Everything is served from the store's stored subtree hashes (O(log n) per proof, never a
//! rebuild) and only up to the tree size of the latest signed checkpoint, so that a client can
//! check every answer against a signature.

use atp_core::CoreError;
use atp_grpc::reasons;
use atp_grpc::v1 as pb;
use atp_grpc::v1::log_service_server::LogService;
use atp_store::StoredCheckpoint;
use tonic::{Request, Response, Status};

use crate::error::{Result, ServerError};
use crate::state::AppState;

/// The LogService implementation.
#[derive(Clone, Debug)]
pub struct LogServiceImpl {
    state: AppState,
}

impl LogServiceImpl {
    /// The service over `state`.
    pub fn new(state: AppState) -> Self {
        LogServiceImpl { state }
    }
}

/// The latest signed checkpoint, or `CHECKPOINT_UNAVAILABLE`.
pub async fn latest_checkpoint(state: &AppState) -> Result<StoredCheckpoint> {
    state.store.latest_checkpoint().await?.ok_or_else(|| {
        ServerError::rejected(reasons::CHECKPOINT_UNAVAILABLE, "no checkpoint signed yet")
    })
}

/// A requested tree size (0: the latest checkpoint's), checked against the latest checkpoint.
fn tree_size(requested: u64, checkpoint: &StoredCheckpoint) -> Result<u64> {
    match requested {
        0 => Ok(checkpoint.size),
        n if n > checkpoint.size => Err(ServerError::rejected(
            reasons::TLOG_TREE_SIZE_UNAVAILABLE,
            format!("tree size {n} is beyond the latest checkpoint ({})", checkpoint.size),
        )),
        n => Ok(n),
    }
}

async fn inclusion(
    state: &AppState,
    req: pb::GetInclusionProofRequest,
) -> Result<pb::GetInclusionProofResponse> {
    use pb::get_inclusion_proof_request::Leaf;
    let leaf = req
        .leaf
        .ok_or_else(|| ServerError::field("leaf", "leaf_index or leaf_hash is required"))?;
    let cp = latest_checkpoint(state).await?;
    let size = tree_size(req.tree_size, &cp)?;
    let index = match leaf {
        Leaf::LeafIndex(i) => {
            if i >= size {
                return Err(CoreError::TlogIndexOutOfRange { index: i, tree_size: size }.into());
            }
            i
        }
        Leaf::LeafHash(h) => {
            let hash: [u8; 32] = h
                .as_slice()
                .try_into()
                .map_err(|_| ServerError::field("leaf_hash", "must be 32 bytes"))?;
            find_leaf(state, &hash, size).await?
        }
    };
    let entry = state.store.get_entries(index, 1).await?;
    let leaf_hash = entry.first().map(|e| e.leaf_hash).ok_or_else(|| {
        ServerError::internal(format!("leaf {index} below the checkpoint is missing"))
    })?;
    let path = state.store.inclusion_proof(index, size).await?;
    Ok(pb::GetInclusionProofResponse {
        leaf_index: index,
        tree_size: size,
        leaf_hash: leaf_hash.to_vec(),
        inclusion_path: path.iter().map(|h| h.to_vec()).collect(),
    })
}

/// The first index below `size` whose leaf hash is `hash`.
///
/// One indexed lookup in the store; a leaf added after the tree size counts as not found.
async fn find_leaf(state: &AppState, hash: &[u8; 32], size: u64) -> Result<u64> {
    match state.store.find_leaf(hash).await? {
        Some(index) if index < size => Ok(index),
        _ => Err(ServerError::rejected(
            reasons::TLOG_LEAF_NOT_FOUND,
            "no leaf of the log has this hash",
        )),
    }
}

async fn consistency(
    state: &AppState,
    req: pb::GetConsistencyProofRequest,
) -> Result<pb::GetConsistencyProofResponse> {
    let cp = latest_checkpoint(state).await?;
    let second = tree_size(req.second_tree_size, &cp)?;
    let first = req.first_tree_size;
    if first == 0 || first > second {
        return Err(
            CoreError::TlogConsistencySizeOrder { old_size: first, new_size: second }.into()
        );
    }
    let path = state.store.consistency_proof(first, second).await?;
    Ok(pb::GetConsistencyProofResponse {
        first_tree_size: first,
        second_tree_size: second,
        consistency_path: path.iter().map(|h| h.to_vec()).collect(),
    })
}

async fn entries(state: &AppState, req: pb::GetEntriesRequest) -> Result<pb::GetEntriesResponse> {
    let cp = latest_checkpoint(state).await?;
    if req.start_index >= cp.size {
        return Err(
            CoreError::TlogIndexOutOfRange { index: req.start_index, tree_size: cp.size }.into()
        );
    }
    let want =
        u64::from(state.settings.limits.page_size(req.page_size)).min(cp.size - req.start_index);
    let limit = u32::try_from(want).unwrap_or(u32::MAX);
    let page = state.store.get_entries(req.start_index, limit).await?;
    Ok(pb::GetEntriesResponse {
        entries: page
            .iter()
            .filter(|e| e.index < cp.size)
            .map(|e| pb::LogEntry { leaf_index: e.index, entry: e.entry_bytes() })
            .collect(),
        tree_size: cp.size,
    })
}

#[tonic::async_trait]
impl LogService for LogServiceImpl {
    async fn get_checkpoint(
        &self,
        _request: Request<pb::GetCheckpointRequest>,
    ) -> std::result::Result<Response<pb::GetCheckpointResponse>, Status> {
        let latest = latest_checkpoint(&self.state).await?;
        // The note with its witness cosignatures, while it is the latest checkpoint's.
        let cosigned = match self.state.settings.witnesses.is_empty() {
            true => None,
            false => self
                .state
                .store
                .get_meta(crate::witnesses::COSIGNED_CHECKPOINT_META)
                .await
                .map_err(ServerError::from)?
                .filter(|note| note.starts_with(&latest.note)),
        };
        let note = cosigned.unwrap_or(latest.note);
        Ok(Response::new(pb::GetCheckpointResponse { checkpoint_note: note.into_bytes() }))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<pb::GetInclusionProofRequest>,
    ) -> std::result::Result<Response<pb::GetInclusionProofResponse>, Status> {
        let r = inclusion(&self.state, request.into_inner()).await;
        Ok(Response::new(r?))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> std::result::Result<Response<pb::GetConsistencyProofResponse>, Status> {
        let r = consistency(&self.state, request.into_inner()).await;
        Ok(Response::new(r?))
    }

    async fn get_entries(
        &self,
        request: Request<pb::GetEntriesRequest>,
    ) -> std::result::Result<Response<pb::GetEntriesResponse>, Status> {
        let r = entries(&self.state, request.into_inner()).await;
        Ok(Response::new(r?))
    }
}
