//! The CLI tests run against a real node in-process (`atp-test-node`), wired as `atp-node`
//! wires it.
#![allow(unreachable_pub)]

use atp_server::Extensions;
use atp_test_node::NodeOptions;
pub use atp_test_node::{ADMIN_TOKEN, TestNode, workspace_root};

pub async fn start_node() -> TestNode {
    TestNode::start().await
}

/// A node whose admin-token check is `verify_admin_token` (the bearer token without `Bearer `).
pub async fn start_node_with(
    verify_admin_token: impl Fn(&str) -> bool + Send + Sync + 'static,
) -> TestNode {
    start_node_with_extensions(Extensions::community(verify_admin_token)).await
}

/// A node with the given extension seam (say an authorizer with a role policy).
pub async fn start_node_with_extensions(extensions: Extensions) -> TestNode {
    TestNode::start_with(NodeOptions { extensions: Some(extensions), ..NodeOptions::default() })
        .await
}
