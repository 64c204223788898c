//! The per-peer rate limit covers the HTTP routes as well as the gRPC services, with one budget
//! per peer IP shared by both: a real node on 127.0.0.1:0 with a budget of 1 call per second
//! and a burst of 2.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use atp_grpc::v1 as pb;
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_server::{Limits, ServerSettings};
use atp_test_node::{NodeOptions, TestNode, reason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Requests to try before concluding that nothing is limited: with a burst of 2 and 1 call
/// per second, avoiding a refusal this many times would take about 8 seconds of requests.
const ATTEMPTS: usize = 10;

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn http_routes_share_the_per_peer_budget_with_grpc() {
    let limits = Limits { rate_limit_per_second: 1, rate_limit_burst: 2, ..Limits::default() };
    let settings = ServerSettings { limits, ..ServerSettings::default() };
    let node = TestNode::start_with(NodeOptions {
        settings,
        checkpointer: false,
        ..NodeOptions::default()
    })
    .await;

    let mut answers = Vec::new();
    for _ in 0..ATTEMPTS {
        let (status, text) = http_get(node.addr, "/.well-known/did.json").await;
        answers.push(status);
        if status == 429 {
            assert!(text.contains("application/problem+json"), "{text}");
            assert!(text.contains("\"reason\":\"RATE_LIMITED\""), "{text}");
            break;
        }
        assert_eq!(status, 200, "{text}");
    }
    assert_eq!(answers.last(), Some(&429), "no HTTP request was limited: {answers:?}");
    assert!(answers.len() >= 3, "the burst of 2 was not granted first: {answers:?}");

    // The same peer's gRPC calls draw on the bucket the HTTP requests emptied: a budget of
    // their own would grant a fresh burst of 2 first, the shared one at most the token that
    // refilled meanwhile (1 per second).
    let mut admin = AdminServiceClient::new(node.channel().await);
    let mut granted = 0;
    let mut refused = None;
    for _ in 0..ATTEMPTS {
        match admin.get_node_info(pb::GetNodeInfoRequest {}).await {
            Ok(_) => granted += 1,
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let refused = refused.expect("no gRPC call was limited");
    assert!(granted < 2, "gRPC got a fresh burst ({granted} calls): the budget is not shared");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason(&refused), "RATE_LIMITED");
    node.stop().await;
}
