//! A real node for the credential and message tests (`atp-test-node`: SQLite store in a
//! temporary directory, every gRPC service and the HTTP routes on one 127.0.0.1:0 listener) on a
//! clock the tests move by hand, plus agents stored directly and a minimal HTTP/1.1 client (no
//! extra dependencies).
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use atp_core::kel::{self, SignedEvent};
use atp_crypto::{AlgorithmId, SigningKey};
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_grpc::v1::credential_service_client::CredentialServiceClient;
use atp_grpc::v1::message_service_client::MessageServiceClient;
use atp_server::{AppState, Extensions, ServerSettings};
use atp_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

pub const ADMIN_TOKEN: &str = "test-admin-token";
/// A fixed start time (2026-01-01T00:00:00Z), moved by tests through `clock`.
pub const T0_MS: i64 = 1_767_225_600_000;

pub fn ts(ms: i64) -> String {
    atp_core::vc::DateTimeStamp::from_unix(ms.div_euclid(1000)).to_string()
}

pub struct Node {
    pub addr: SocketAddr,
    pub state: AppState,
    pub store: Arc<dyn Store>,
    pub clock: Arc<AtomicI64>,
    _node: atp_test_node::TestNode,
}

/// An agent identity: its key and inception, stored on the node.
pub struct Agent {
    pub did: String,
    pub key: SigningKey,
    pub kel: Vec<SignedEvent>,
}

pub fn composite() -> SigningKey {
    SigningKey::generate(AlgorithmId::MlDsa65Ed25519).unwrap()
}

pub async fn store_agent(store: &Arc<dyn Store>, at_ms: i64) -> Agent {
    let key = composite();
    let next = composite();
    let icp = kel::incept(&key, &next.public_key(), vec![], &ts(at_ms)).unwrap();
    let did = format!("{}{}", kel::DID_ATP_PREFIX, icp.event.scid().unwrap());
    let accepted = kel::KeyEventLog::new().accept(&did, None, icp.clone()).unwrap();
    store.append_kel_event(accepted).await.unwrap();
    Agent { did, key, kel: vec![icp] }
}

pub async fn start() -> Node {
    start_with(ServerSettings::default()).await
}

/// [`start`] with `settings` (its trust computation never scheduled).
pub async fn start_with(settings: ServerSettings) -> Node {
    let clock = Arc::new(AtomicI64::new(T0_MS));
    let c = clock.clone();
    // No checkpointer and no scheduled trust computation: these tests move the clock by hand.
    let node = atp_test_node::TestNode::start_with(atp_test_node::NodeOptions {
        settings: ServerSettings { trust_recompute_interval: Duration::ZERO, ..settings },
        extensions: Some(Extensions::community(|t: &str| t == ADMIN_TOKEN)),
        checkpointer: false,
        clock: Some(Arc::new(move || c.load(Ordering::SeqCst))),
        inception_time: ts(T0_MS - 3_600_000),
        ..atp_test_node::NodeOptions::default()
    })
    .await;
    Node {
        addr: node.addr,
        state: node.state.clone(),
        store: node.state.store.clone(),
        clock,
        _node: node,
    }
}

impl Node {
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.unwrap()
    }
    pub async fn credentials(&self) -> CredentialServiceClient<Channel> {
        CredentialServiceClient::new(self.channel().await)
    }
    pub async fn messages(&self) -> MessageServiceClient<Channel> {
        MessageServiceClient::new(self.channel().await)
    }
    pub async fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel().await)
    }
    /// The node's data directory: its SQLite database and write-ahead log.
    pub fn data_dir(&self) -> &std::path::Path {
        self._node.data_dir()
    }
    pub async fn log_size(&self) -> u64 {
        self.store.log_size().await.unwrap()
    }
    pub fn set_now(&self, ms: i64) {
        self.clock.store(ms, Ordering::SeqCst);
    }

    /// One HTTP/1.1 request; returns (status, body bytes).
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (u16, Vec<u8>) {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or_default();
        if method == "POST" {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut body = raw[split + 4..].to_vec();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        (status, body)
    }

    pub async fn http_json(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        let (status, body) = self.http(method, path, headers, bytes.as_deref()).await;
        let v = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!("{status}: not JSON ({e}): {}", String::from_utf8_lossy(&body))
        });
        (status, v)
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

pub fn reason(status: &tonic::Status) -> String {
    atp_grpc::status::reason(status).unwrap_or_else(|| format!("<no reason: {status:?}>"))
}

pub fn bearer<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert("authorization", format!("Bearer {ADMIN_TOKEN}").parse().unwrap());
    r
}
