//! The hostile-input table's vocabulary: outcomes, cases, store snapshots and raw HTTP.

use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use atp_grpc::v1::log_service_client::LogServiceClient;
use tonic::transport::Channel;

use super::*;

/// The node under test with one connected channel.
pub(super) struct Target<'a> {
    pub(super) node: &'a crate::TestNode,
    pub(super) channel: Channel,
}

impl std::ops::Deref for Target<'_> {
    type Target = crate::TestNode;
    fn deref(&self) -> &crate::TestNode {
        self.node
    }
}

impl<'a> Target<'a> {
    pub(super) async fn new(node: &'a crate::TestNode) -> Target<'a> {
        Target { node, channel: node.channel().await }
    }

    pub(super) fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel.clone())
    }

    pub(super) fn log(&self) -> LogServiceClient<Channel> {
        LogServiceClient::new(self.channel.clone())
    }

    pub(super) fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    /// (log size, identity count) straight from the store.
    pub(super) async fn counts(&self) -> (u64, u64) {
        let s = self.state.store.stats().await.expect("stats");
        (s.log_size, s.identities)
    }

    pub(super) async fn submit(
        &self,
        event: &SignedEvent,
    ) -> Result<pb::SubmitEventResponse, tonic::Status> {
        let json = event.canonical_bytes().expect("json");
        self.identity()
            .submit_event(pb::SubmitEventRequest { signed_event_json: json })
            .await
            .map(tonic::Response::into_inner)
    }
}

/// Signs an arbitrary event body with `key` (what an attacker can do).
pub(super) fn sign(event: Event, key: &SigningKey) -> SignedEvent {
    let sig = key
        .sign(&event.canonical_bytes().expect("jcs"), SigningContext::Kel.as_bytes())
        .expect("sign");
    SignedEvent { event, sig: URL_SAFE_NO_PAD.encode(sig) }
}

/// A rotation body after `prev` at sequence `s`, revealing `k` and committing to `next`.
pub(super) fn rotation(did: &str, s: u64, prev: &str, k: &SigningKey, next: &SigningKey) -> Event {
    Event {
        v: kel::EVENT_VERSION.to_owned(),
        t: EventType::Rotation,
        d: Some(did.to_owned()),
        s,
        p: Some(prev.to_owned()),
        k: Some(CompositeKey::from_public_key(k.public_key_ref()).expect("key")),
        n: Some(key_commitment(next.public_key_ref()).expect("commitment")),
        services: None,
        ts: "2026-03-02T00:00:00Z".to_owned(),
    }
}

pub(super) fn with_token<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(t) = token {
        req.metadata_mut().insert("authorization", t.parse().expect("ascii"));
    }
    req
}

pub(super) fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}

/// What a call produced: a gRPC error (code, ErrorInfo reason), an HTTP answer (status, code
/// from the body), or success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Grpc(Code, Option<String>),
    Http(u16, Option<String>),
    Ok,
}

pub(super) fn g(code: Code, reason: &str) -> Outcome {
    Outcome::Grpc(code, Some(reason.to_owned()))
}

pub(super) fn h(status: u16, code: &str) -> Outcome {
    Outcome::Http(status, Some(code.to_owned()))
}

pub(super) fn grpc<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Grpc(e.code(), atp_grpc::status::reason(&e)),
    }
}

pub(super) type Run<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;

pub(super) struct Case<'a> {
    pub(super) name: &'static str,
    pub(super) want: Outcome,
    pub(super) run: Run<'a>,
    /// A fork is refused but its evidence is recorded: exactly one evidence row and one leaf.
    pub(super) stores_evidence: bool,
}

pub(super) fn case<'a>(
    name: &'static str,
    want: Outcome,
    run: impl Future<Output = Outcome> + 'a,
) -> Case<'a> {
    Case { name, want, run: Box::pin(run), stores_evidence: false }
}

/// Everything a hostile call could change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub(super) log_size: u64,
    pub(super) identities: u64,
    pub(super) kel_events: u64,
    pub(super) evidence: u64,
    pub(super) trust_anchors: u64,
    pub(super) status_lists: u64,
    /// (list id, version, next index) of every status list the test issued from.
    pub(super) lists: Vec<(String, u64, u64)>,
}

pub(super) async fn snapshot(node: &crate::TestNode, list_ids: &[String]) -> Snapshot {
    let s = node.state.store.stats().await.expect("stats");
    let mut lists = Vec::new();
    for id in list_ids {
        let r = node.state.store.get_status_list(id).await.expect("list").expect("list exists");
        lists.push((id.clone(), r.version, r.next_index));
    }
    Snapshot {
        log_size: s.log_size,
        identities: s.identities,
        kel_events: s.kel_events,
        evidence: s.evidence,
        trust_anchors: s.trust_anchors,
        status_lists: s.status_lists,
        lists,
    }
}

/// One raw HTTP/1.1 request with full control of the headers. The outcome's code is the
/// problem-details `reason`, or a DID resolution `didResolutionMetadata.error`.
pub(super) async fn http(
    addr: SocketAddr,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
) -> Outcome {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in &headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    // The server may answer (413) before it has read the whole body.
    let _ = s.write_all(&body).await;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw).await;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head.split(' ').nth(1).expect("status").parse().expect("status code");
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(reason) = v.get("reason").and_then(Value::as_str) {
        assert!(
            head.contains("content-type: application/problem+json"),
            "problem details need their media type: {head}"
        );
        assert_eq!(v["status"], json!(status), "problem details repeat the status");
        return Outcome::Http(status, Some(reason.to_owned()));
    }
    let code = v["didResolutionMetadata"]["error"].as_str().map(str::to_owned);
    Outcome::Http(status, code)
}

pub(super) fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).expect("utf-8").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

pub(super) fn json_ct() -> (&'static str, String) {
    ("Content-Type", "application/json".to_owned())
}
