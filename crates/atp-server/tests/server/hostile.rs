//! The hostile-input table (`atp_test_node::hostile`) against a node on the SQLite store. The
//! same table runs against PostgreSQL in `enterprise/ha/tests/postgres/hostile.rs`.
#![allow(missing_docs)]

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_precisely_and_stores_nothing() {
    let node = atp_test_node::TestNode::start_with(atp_test_node::NodeOptions {
        settings: atp_server::ServerSettings {
            checkpoint_interval: std::time::Duration::from_millis(50),
            ..atp_server::ServerSettings::default()
        },
        ..atp_test_node::NodeOptions::default()
    })
    .await;
    atp_test_node::hostile::refuses_hostile_input_and_stores_nothing(&node).await;
    node.stop().await;
}
