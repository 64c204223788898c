//! The hostile-input table (`atp_test_node::hostile`, the same one the SQLite node runs in
//! `crates/atp-server/tests/server/hostile.rs`) against a node on `PgStore` and a real
//! PostgreSQL server (Debian's package, started by the test in a temporary directory on
//! 127.0.0.1): the same codes, and nothing stored by any refused call.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use atp_enterprise_ha::{PgConfig, PgStore};
use atp_test_node::postgres::{Durability, PgServer};
use atp_test_node::{NodeOptions, TestNode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_precisely_and_stores_nothing_on_postgresql() {
    // `None` outside CI when PostgreSQL is not installed (`PgServer::start` printed a SKIP).
    let Some(server) = PgServer::start(Durability::Relaxed) else { return };
    let database = server.create_database().unwrap();
    let store = PgStore::connect(server.url(&database).parse().unwrap(), &PgConfig::default())
        .await
        .unwrap();
    let node = TestNode::start_with(NodeOptions {
        settings: atp_server::ServerSettings {
            checkpoint_interval: Duration::from_millis(50),
            ..atp_server::ServerSettings::default()
        },
        store: Some(Arc::new(store)),
        ..NodeOptions::default()
    })
    .await;
    atp_test_node::hostile::refuses_hostile_input_and_stores_nothing(&node).await;
    node.stop().await;
}
