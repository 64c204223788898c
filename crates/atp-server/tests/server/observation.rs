//! Every call of an `atp.v1` service is observed once, by the one tower layer around the
//! services: the handler's answers, the rate limit's refusals and tonic's own (a method no
//! service has), with the peer and the outcome the client sees. A real node on 127.0.0.1:0
//! with a recording observer.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use atp_grpc::v1 as pb;
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use atp_server::extensions::{DomainEvent, Extensions, Observer, RpcEvent};
use atp_server::{Limits, ServerSettings};
use atp_test_node::{NodeOptions, TestNode, reason};

/// What the observer saw of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    method: String,
    peer: Option<SocketAddr>,
    outcome: String,
}

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<Seen>>,
}

impl Recorder {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl Observer for Recorder {
    fn on_rpc(&self, event: &RpcEvent<'_>) {
        self.calls.lock().unwrap().push(Seen {
            method: event.method.to_owned(),
            peer: event.peer,
            outcome: event.outcome.to_owned(),
        });
    }

    fn on_domain_event(&self, _event: &DomainEvent<'_>) {}
}

/// Requests to try before concluding that nothing is limited (1 call per second refills).
const ATTEMPTS: usize = 10;

#[tokio::test]
async fn each_grpc_call_is_observed_once_with_the_outcome_the_client_sees() {
    let recorder = Arc::new(Recorder::default());
    let extensions = Extensions { observer: recorder.clone(), ..Extensions::community(|_| false) };
    // A burst of 3 at 1 call per second: the three calls below pass, then the limit refuses.
    let limits = Limits { rate_limit_per_second: 1, rate_limit_burst: 3, ..Limits::default() };
    let node = TestNode::start_with(NodeOptions {
        settings: ServerSettings { limits, ..ServerSettings::default() },
        extensions: Some(extensions),
        checkpointer: false,
        ..NodeOptions::default()
    })
    .await;
    let channel = node.channel().await;
    recorder.take();
    let observed = |seen: &[Seen], method: &str, outcome: &str| {
        let matching: Vec<&Seen> = seen.iter().filter(|s| s.method == method).collect();
        assert_eq!(matching.len(), 1, "{method} observed once: {seen:?}");
        assert_eq!(matching[0].outcome, outcome, "{seen:?}");
        let peer = matching[0].peer.expect("the peer is known");
        assert!(peer.ip().is_loopback(), "{peer}");
    };

    // A handler's success and a handler's refusal, by its reason code.
    let mut admin = AdminServiceClient::new(channel.clone());
    admin.get_node_info(pb::GetNodeInfoRequest {}).await.unwrap();
    let mut identity = IdentityServiceClient::new(channel.clone());
    let missing = "did:atp:zQmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
    let refused = identity
        .resolve(pb::ResolveRequest { did: missing.to_owned(), version_id: None })
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "DID_NOT_FOUND");
    let seen = recorder.take();
    assert_eq!(seen.len(), 2, "{seen:?}");
    observed(&seen, "atp.v1.AdminService/GetNodeInfo", "OK");
    observed(&seen, "atp.v1.IdentityService/Resolve", "DID_NOT_FOUND");

    // A method no service has: tonic answers, and the client's path never becomes a label.
    let mut raw = tonic::client::Grpc::new(channel.clone());
    raw.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/atp.v1.IdentityService/NoSuchMethod");
    let codec: tonic_prost::ProstCodec<pb::GetNodeInfoRequest, pb::GetNodeInfoResponse> =
        tonic_prost::ProstCodec::default();
    let unknown =
        raw.unary(tonic::Request::new(pb::GetNodeInfoRequest {}), path, codec).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::Unimplemented, "{unknown:?}");
    let seen = recorder.take();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let unmatched = format!("atp.v1.IdentityService/{}", atp_server::observe::UNMATCHED_METHOD);
    observed(&seen, &unmatched, "UNIMPLEMENTED");

    // The rate limit's refusal never reaches a handler, and is observed all the same.
    let mut limited = None;
    for _ in 0..ATTEMPTS {
        if let Err(status) = admin.get_node_info(pb::GetNodeInfoRequest {}).await {
            limited = Some(status);
            break;
        }
    }
    let limited = limited.expect("no call was limited");
    assert_eq!(reason(&limited), "RATE_LIMITED");
    let seen = recorder.take();
    let outcomes: Vec<&str> = seen.iter().map(|s| s.outcome.as_str()).collect();
    assert_eq!(outcomes.last(), Some(&"RATE_LIMITED"), "{seen:?}");
    assert!(seen.iter().all(|s| s.method == "atp.v1.AdminService/GetNodeInfo"), "{seen:?}");

    // Over the limit, a path that names no method is refused by the rate limit before tonic
    // routes it, and is still reported as unmatched: never by the client's string.
    let mut limited = None;
    for attempt in 0..ATTEMPTS {
        let path = format!("/atp.v1.IdentityService/ClientChosen{attempt}");
        let path = http::uri::PathAndQuery::try_from(path).unwrap();
        let codec: tonic_prost::ProstCodec<pb::GetNodeInfoRequest, pb::GetNodeInfoResponse> =
            tonic_prost::ProstCodec::default();
        raw.ready().await.unwrap();
        let refused = raw
            .unary(tonic::Request::new(pb::GetNodeInfoRequest {}), path, codec)
            .await
            .unwrap_err();
        if reason(&refused) == "RATE_LIMITED" {
            limited = Some(refused);
            break;
        }
    }
    assert!(limited.is_some(), "no call to an unknown method was limited");
    let seen = recorder.take();
    assert!(seen.iter().all(|s| s.method == unmatched), "{seen:?}");
    assert_eq!(seen.last().map(|s| s.outcome.as_str()), Some("RATE_LIMITED"), "{seen:?}");
    node.stop().await;
}
