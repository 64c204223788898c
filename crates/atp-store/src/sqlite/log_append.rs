//! Log appends inside the writer's open transaction: the frontier (size and peaks) and one leaf
//! with the tree nodes it completes. Shared by the writer and the role-binding writes, which is
//! why it is neither of them.

use atp_core::tlog::Hash;
use sqlx::SqliteConnection;

use super::read::{fetch_nodes, log_size_on};
use crate::backend::{Frontier, peak_keys, to_i64};
use crate::error::{Result, StoreError};
use atp_core::log_entry::{LeafKind, entry_leaf_hash};

/// Reads the log's size and peaks inside the write transaction.
pub(super) async fn load_frontier(conn: &mut SqliteConnection) -> Result<Frontier> {
    let size = log_size_on(conn).await?;
    let keys = peak_keys(size);
    let nodes = fetch_nodes(conn, &keys.iter().copied().collect()).await?;
    let peaks = keys
        .iter()
        .map(|k| nodes.get(k).copied().ok_or_else(|| StoreError::corrupt("missing log peak")))
        .collect::<Result<Vec<_>>>()?;
    Frontier::new(size, peaks)
}

/// Appends a leaf and the tree nodes it completes; returns its index.
pub(super) async fn append_leaf(
    conn: &mut SqliteConnection,
    frontier: &mut Frontier,
    kind: LeafKind,
    data_hash: &Hash,
    reference: Option<String>,
    now: i64,
) -> Result<u64> {
    let leaf = entry_leaf_hash(kind, data_hash);
    let (index, nodes) = frontier.append(leaf);
    sqlx::query(
        "INSERT INTO tlog_leaves (leaf_index, kind, data_hash, subject_ref, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(to_i64(index, "leaf index")?)
    .bind(kind.as_str())
    .bind(&data_hash[..])
    .bind(reference)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for ((level, node_index), hash) in nodes {
        sqlx::query("INSERT INTO tlog_nodes (tree_level, node_index, hash) VALUES ($1, $2, $3)")
            .bind(i64::from(level))
            .bind(to_i64(node_index, "node index")?)
            .bind(&hash[..])
            .execute(&mut *conn)
            .await?;
    }
    Ok(index)
}
