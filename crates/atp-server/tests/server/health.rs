//! `grpc.health.v1` against a real node: SERVING for the server and every `atp.v1` service
//! while the store answers; NOT_SERVING once the store is gone (closed here, as a lost
//! database would be), and at once when the node starts draining.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use atp_test_node::TestNode;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn status(node: &TestNode, service: &str) -> ServingStatus {
    let mut client = HealthClient::new(node.channel().await);
    let r = client.check(HealthCheckRequest { service: service.to_owned() }).await.unwrap();
    r.into_inner().status()
}

/// Polls until every name reports `want` (bounded by a few probe intervals).
async fn wait_for(node: &TestNode, want: ServingStatus) -> Duration {
    let started = Instant::now();
    let names: Vec<&str> =
        std::iter::once("").chain(atp_grpc::SERVICE_NAMES.iter().copied()).collect();
    loop {
        let mut all = true;
        for name in &names {
            all &= status(node, name).await == want;
        }
        if all {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < atp_server::health::PROBE_INTERVAL * 5,
            "health did not turn {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_its_store_is_not_serving() {
    let node = TestNode::start().await;
    wait_for(&node, ServingStatus::Serving).await;
    node.state.store.close().await.unwrap();
    let after = wait_for(&node, ServingStatus::NotServing).await;
    assert!(after <= atp_server::health::PROBE_INTERVAL * 3, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_is_not_serving_at_once() {
    let node = TestNode::start().await;
    wait_for(&node, ServingStatus::Serving).await;
    atp_server::health::start_draining(&node.state);
    let after = wait_for(&node, ServingStatus::NotServing).await;
    assert!(after < atp_server::health::PROBE_INTERVAL, "{after:?}");
}
