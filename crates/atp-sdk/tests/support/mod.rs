//! The SDK tests run against a real node in-process (`atp-test-node`), wired as `atp-node`
//! wires it, except that trust snapshots are computed only on demand
//! (`atp_server::trust::recompute_now`).
// `workspace_root` is used only by the Unix-only python_agent.rs.
#![allow(unused_imports, unreachable_pub)]

use std::path::Path;
use std::time::Duration;

use atp_server::ServerSettings;
use atp_test_node::NodeOptions;
pub use atp_test_node::{ADMIN_TOKEN, TestNode, workspace_root};

pub async fn start_node() -> TestNode {
    // No scheduled trust computation: tests publish snapshots with `recompute_now`, so what they
    // read is the snapshot they computed.
    let settings = ServerSettings {
        checkpoint_interval: Duration::from_millis(100),
        trust_recompute_interval: Duration::ZERO,
        ..ServerSettings::default()
    };
    TestNode::start_with(NodeOptions { settings, ..NodeOptions::default() }).await
}

/// Options for an agent whose keys live under `home`.
pub fn options(node: &TestNode, home: &Path) -> atp::AgentOptions {
    let mut o = atp::AgentOptions::new(&node.url);
    o.home = Some(home.to_path_buf());
    o
}
