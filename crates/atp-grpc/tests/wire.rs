//! Over a real socket: a tonic server built from the generated code, the generated client, the
//! error model (ErrorInfo through the `grpc-status-details-bin` trailer), and the standard health
//! and reflection services built from this crate's descriptor set.
//!
//! These tests check the generated code and the error model, not node logic: the AdminService
//! here is a test double that returns fixed answers. The real services live in `atp-server`.

use std::net::SocketAddr;

use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_grpc::v1::admin_service_server::{AdminService, AdminServiceServer};
use atp_grpc::v1::{
    GetNodeInfoRequest, GetNodeInfoResponse, ListTrustAnchorsRequest, ListTrustAnchorsResponse,
    NodeEdition, NodeLimits, SetTrustAnchorsRequest, SetTrustAnchorsResponse, TrustAnchor,
};
use atp_grpc::{FILE_DESCRIPTOR_SET, SERVICE_NAMES, reasons, status};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::codegen::tokio_stream;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};

/// A fixed-answer AdminService: GetNodeInfo succeeds, SetTrustAnchors demands a bearer token the
/// way the community authorizer will, ListTrustAnchors answers a fixed set.
struct AdminDouble;

const NODE_DID: &str = "did:atp:zQmbXLEvot8Lu4hxPrniP9gatTYaGhXrPojmMvN67FEEyhp";

#[tonic::async_trait]
impl AdminService for AdminDouble {
    async fn get_node_info(
        &self,
        _request: Request<GetNodeInfoRequest>,
    ) -> Result<Response<GetNodeInfoResponse>, Status> {
        Ok(Response::new(GetNodeInfoResponse {
            node_did: NODE_DID.into(),
            node_version: "0.1.0".into(),
            api_versions: vec!["atp.v1".into()],
            log_origin: "atp.example/log".into(),
            checkpoint_verifier_keys: vec!["atp.example/log+01020304+AQ==".into()],
            edition: NodeEdition::Community.into(),
            features: vec![],
            limits: Some(NodeLimits {
                max_request_bytes: 4 << 20,
                max_page_size: 1000,
                clock_skew_ms: 60_000,
                max_envelope_lifetime_ms: 300_000,
                session_token_lifetime_ms: 900_000,
            }),
            public_base_url: "http://127.0.0.1:7443".into(),
        }))
    }

    async fn set_trust_anchors(
        &self,
        request: Request<SetTrustAnchorsRequest>,
    ) -> Result<Response<SetTrustAnchorsResponse>, Status> {
        match request.metadata().get("authorization") {
            None => Err(status::error(
                Code::Unauthenticated,
                reasons::AUTH_REQUIRED,
                "this call needs the admin bearer token",
                &[("operation", "trust_anchors.set")],
            )),
            Some(_) => Err(status::error(
                Code::Unauthenticated,
                reasons::AUTH_INVALID,
                "wrong admin token",
                &[],
            )),
        }
    }

    async fn list_trust_anchors(
        &self,
        _request: Request<ListTrustAnchorsRequest>,
    ) -> Result<Response<ListTrustAnchorsResponse>, Status> {
        Ok(Response::new(ListTrustAnchorsResponse {
            anchors: vec![TrustAnchor { did: NODE_DID.into(), note: "ünïcödé note".into() }],
            revision: u64::MAX,
        }))
    }

    async fn list_role_bindings(
        &self,
        _request: Request<atp_grpc::v1::ListRoleBindingsRequest>,
    ) -> Result<Response<atp_grpc::v1::ListRoleBindingsResponse>, Status> {
        Err(Status::unimplemented("not in this double"))
    }

    async fn add_role_binding(
        &self,
        _request: Request<atp_grpc::v1::AddRoleBindingRequest>,
    ) -> Result<Response<atp_grpc::v1::AddRoleBindingResponse>, Status> {
        Err(Status::unimplemented("not in this double"))
    }

    async fn remove_role_binding(
        &self,
        _request: Request<atp_grpc::v1::RemoveRoleBindingRequest>,
    ) -> Result<Response<atp_grpc::v1::RemoveRoleBindingResponse>, Status> {
        Err(Status::unimplemented("not in this double"))
    }

    async fn erase_subject(
        &self,
        _request: Request<atp_grpc::v1::EraseSubjectRequest>,
    ) -> Result<Response<atp_grpc::v1::EraseSubjectResponse>, Status> {
        Err(Status::unimplemented("not in this double"))
    }

    async fn recompute_trust(
        &self,
        _request: Request<atp_grpc::v1::RecomputeTrustRequest>,
    ) -> Result<Response<atp_grpc::v1::RecomputeTrustResponse>, Status> {
        Err(Status::unimplemented("not in this double"))
    }

    async fn get_trust_config(
        &self,
        _request: Request<atp_grpc::v1::GetTrustConfigRequest>,
    ) -> Result<Response<atp_grpc::v1::GetTrustConfigResponse>, Status> {
        Err(Status::unimplemented("not in this double"))
    }
}

/// A server on 127.0.0.1:0 with the admin double, health and reflection; dropped sender stops it.
async fn start_server() -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    for name in SERVICE_NAMES {
        health_reporter.set_service_status(name, tonic_health::ServingStatus::Serving).await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("reflection service builds from FILE_DESCRIPTOR_SET");

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        Server::builder()
            .add_service(AdminServiceServer::new(AdminDouble))
            .add_service(health_service)
            .add_service(reflection)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stop_rx.await;
            })
            .await
            .expect("server runs");
    });
    (addr, stop_tx)
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connect")
}

#[tokio::test]
async fn generated_client_and_server_round_trip() {
    let (addr, _stop) = start_server().await;
    let mut client = AdminServiceClient::new(channel(addr).await);

    let info = client.get_node_info(GetNodeInfoRequest {}).await.expect("GetNodeInfo").into_inner();
    assert_eq!(info.node_did, NODE_DID);
    assert_eq!(info.edition(), NodeEdition::Community);
    assert_eq!(info.api_versions, ["atp.v1"]);
    assert_eq!(info.limits.expect("limits").max_page_size, 1000);

    let anchors = client
        .list_trust_anchors(ListTrustAnchorsRequest {})
        .await
        .expect("ListTrustAnchors")
        .into_inner();
    assert_eq!(anchors.revision, u64::MAX);
    assert_eq!(anchors.anchors[0].note, "ünïcödé note");
}

#[tokio::test]
async fn error_info_reason_crosses_the_wire() {
    let (addr, _stop) = start_server().await;
    let mut client = AdminServiceClient::new(channel(addr).await);

    let err = client
        .set_trust_anchors(SetTrustAnchorsRequest { anchors: vec![], expected_revision: Some(0) })
        .await
        .expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.message(), "this call needs the admin bearer token");
    let info = status::error_info(&err).expect("ErrorInfo detail");
    assert_eq!(info.reason, "AUTH_REQUIRED");
    assert_eq!(info.domain, "atp.v1");
    assert_eq!(info.metadata.get("operation").map(String::as_str), Some("trust_anchors.set"));

    let mut request =
        Request::new(SetTrustAnchorsRequest { anchors: vec![], expected_revision: None });
    request.metadata_mut().insert("authorization", "Bearer wrong".parse().expect("ascii"));
    let err = client.set_trust_anchors(request).await.expect_err("wrong token");
    assert_eq!(status::reason(&err).as_deref(), Some("AUTH_INVALID"));
}

#[tokio::test]
async fn an_unknown_service_has_no_atp_reason() {
    // Statuses from below the services (here: routing) carry no ErrorInfo; clients fall back to
    // the gRPC code, as proto/README.md says.
    let (addr, _stop) = start_server().await;
    let mut client = atp_grpc::v1::log_service_client::LogServiceClient::new(channel(addr).await);
    let err = client
        .get_checkpoint(atp_grpc::v1::GetCheckpointRequest {})
        .await
        .expect_err("LogService is not served here");
    assert_eq!(err.code(), Code::Unimplemented);
    assert_eq!(status::reason(&err), None);
}

#[tokio::test]
async fn health_reports_every_atp_service() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let (addr, _stop) = start_server().await;
    let mut health = HealthClient::new(channel(addr).await);
    for name in SERVICE_NAMES.iter().chain(&[""]) {
        let response = health
            .check(HealthCheckRequest { service: name.to_string() })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(response.status(), ServingStatus::Serving, "{name}");
    }
}

#[tokio::test]
async fn reflection_lists_and_describes_the_atp_services() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

    let (addr, _stop) = start_server().await;
    let mut reflection = ServerReflectionClient::new(channel(addr).await);

    async fn ask(
        client: &mut ServerReflectionClient<Channel>,
        request: MessageRequest,
    ) -> ServerReflectionResponse {
        let request =
            ServerReflectionRequest { host: String::new(), message_request: Some(request) };
        let mut stream = client
            .server_reflection_info(tokio_stream::once(request))
            .await
            .expect("reflection call")
            .into_inner();
        stream.message().await.expect("reflection stream").expect("one response")
    }

    let listed = ask(&mut reflection, MessageRequest::ListServices(String::new())).await;
    let Some(MessageResponse::ListServicesResponse(list)) = listed.message_response else {
        panic!("unexpected reflection answer: {listed:?}");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for name in SERVICE_NAMES {
        assert!(names.contains(name), "reflection does not list {name}: {names:?}");
    }
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

    // A generic tool (grpcurl, Postman) asks for the file that defines a symbol.
    let described =
        ask(&mut reflection, MessageRequest::FileContainingSymbol("atp.v1.IdentityService".into()))
            .await;
    let Some(MessageResponse::FileDescriptorResponse(files)) = described.message_response else {
        panic!("unexpected reflection answer: {described:?}");
    };
    use prost::Message;
    let decoded: Vec<prost_types::FileDescriptorProto> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("decodes"))
        .collect();
    let identity = decoded
        .iter()
        .find(|f| f.name() == "atp/v1/identity.proto")
        .expect("identity.proto served");
    assert!(identity.service.iter().any(|s| s.name() == "IdentityService"));
}
