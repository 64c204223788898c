//! TLS serving: hybrid post-quantum key exchange preferred (and required with `require_pq`),
//! gRPC and HTTP/1.1 over TLS on one port, client certificates, and no plaintext on a TLS port.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use atp_grpc::v1 as pb;
use atp_grpc::v1::admin_service_client::AdminServiceClient;
use atp_server::Extensions;
use atp_server::extensions::{Authenticator, CallInfo, ClientCertificate, Principal, SeamFuture};
use atp_server::tls::TlsSettings;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, NamedGroup, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A CA, a server certificate for localhost / 127.0.0.1 and a client certificate, all PEM.
struct Pki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names).unwrap().signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert_pem, server_key_pem) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
    let (client_cert_pem, client_key_pem) = leaf(vec!["client.example".into()]);
    Pki { ca_pem: ca_cert.pem(), server_cert_pem, server_key_pem, client_cert_pem, client_key_pem }
}

async fn start(pki: &Pki, require_pq: bool, client_ca: bool) -> atp_test_node::TestNode {
    let tls = TlsSettings {
        cert_chain_pem: pki.server_cert_pem.clone().into_bytes(),
        key_pem: pki.server_key_pem.clone().into_bytes(),
        client_ca_pem: client_ca.then(|| pki.ca_pem.clone().into_bytes()),
        require_pq,
    };
    atp_test_node::TestNode::start_with(atp_test_node::NodeOptions {
        tls: Some(tls),
        checkpointer: false,
        ..atp_test_node::NodeOptions::default()
    })
    .await
}

fn roots(pki: &Pki) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap()).unwrap();
    roots
}

/// A rustls client with the aws-lc-rs provider; `groups` replaces its key exchange groups.
fn client_config(
    pki: &Pki,
    groups: Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>>,
    alpn: &[u8],
) -> ClientConfig {
    let mut provider = aws_lc_rs::default_provider();
    if let Some(groups) = groups {
        provider.kx_groups = groups;
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(pki))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

async fn handshake(
    addr: SocketAddr,
    config: ClientConfig,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .expect("handshake finished in time")
}

async fn tonic_client(
    pki: &Pki,
    addr: SocketAddr,
    identity: Option<Identity>,
) -> Result<AdminServiceClient<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    let channel =
        Channel::from_shared(format!("https://{addr}")).unwrap().tls_config(tls)?.connect().await?;
    Ok(AdminServiceClient::new(channel))
}

#[tokio::test]
async fn tls_prefers_x25519mlkem768_and_serves_grpc_and_http1() {
    let pki = pki();
    let node = start(&pki, false, false).await;

    let stream = handshake(node.addr, client_config(&pki, None, b"h2")).await.expect("handshake");
    let conn = stream.get_ref().1;
    assert_eq!(
        conn.negotiated_key_exchange_group().map(|g| g.name()),
        Some(NamedGroup::X25519MLKEM768)
    );
    assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
    drop(stream);

    // A classical-only client still gets in when PQ is not required.
    let classical = client_config(&pki, Some(vec![aws_lc_rs::kx_group::X25519]), b"h2");
    let stream = handshake(node.addr, classical).await.expect("X25519 handshake");
    assert_eq!(
        stream.get_ref().1.negotiated_key_exchange_group().map(|g| g.name()),
        Some(NamedGroup::X25519)
    );
    drop(stream);

    let mut admin = tonic_client(&pki, node.addr, None).await.expect("connect over TLS");
    let info = admin.get_node_info(pb::GetNodeInfoRequest {}).await.expect("GetNodeInfo");
    assert!(info.into_inner().node_did.starts_with("did:atp:"));

    // HTTP/1.1 over TLS on the same port.
    let mut stream =
        handshake(node.addr, client_config(&pki, None, b"http/1.1")).await.expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    stream
        .write_all(b"GET /no-such-route HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    assert!(response.starts_with(b"HTTP/1.1 "), "{}", String::from_utf8_lossy(&response));

    node.stop().await;
}

#[tokio::test]
async fn require_pq_refuses_classical_clients() {
    let pki = pki();
    let node = start(&pki, true, false).await;

    let classical = client_config(&pki, Some(vec![aws_lc_rs::kx_group::X25519]), b"h2");
    assert!(handshake(node.addr, classical).await.is_err(), "X25519-only must fail");

    // The failed handshake did not stop the server.
    let stream = handshake(node.addr, client_config(&pki, None, b"h2")).await.expect("handshake");
    assert_eq!(
        stream.get_ref().1.negotiated_key_exchange_group().map(|g| g.name()),
        Some(NamedGroup::X25519MLKEM768)
    );
    drop(stream);
    let mut admin = tonic_client(&pki, node.addr, None).await.expect("connect over TLS");
    admin.get_node_info(pb::GetNodeInfoRequest {}).await.expect("GetNodeInfo");

    node.stop().await;
}

#[tokio::test]
async fn plaintext_client_fails_against_the_tls_port() {
    let pki = pki();
    let node = start(&pki, false, false).await;

    let plaintext = async {
        let channel =
            Channel::from_shared(format!("http://{}", node.addr)).unwrap().connect().await?;
        AdminServiceClient::new(channel)
            .get_node_info(pb::GetNodeInfoRequest {})
            .await
            .map_err(|s| Box::new(s) as Box<dyn std::error::Error + Send + Sync>)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    };
    let result = tokio::time::timeout(Duration::from_secs(15), plaintext).await;
    assert!(!matches!(result, Ok(Ok(()))), "a plaintext call on the TLS port must fail");

    // The server is still up for TLS clients.
    let mut admin = tonic_client(&pki, node.addr, None).await.expect("connect over TLS");
    admin.get_node_info(pb::GetNodeInfoRequest {}).await.expect("GetNodeInfo");

    node.stop().await;
}

#[tokio::test]
async fn client_ca_requires_a_client_certificate() {
    let pki = pki();
    let node = start(&pki, false, true).await;

    // Without a certificate: the handshake (or the first call) fails.
    let without = async {
        tonic_client(&pki, node.addr, None)
            .await
            .map_err(|e| e.to_string())?
            .get_node_info(pb::GetNodeInfoRequest {})
            .await
            .map_err(|s| s.to_string())
    };
    assert!(without.await.is_err(), "a client without a certificate must fail");

    let identity = Identity::from_pem(&pki.client_cert_pem, &pki.client_key_pem);
    let mut admin = tonic_client(&pki, node.addr, Some(identity)).await.expect("mTLS connect");
    admin.get_node_info(pb::GetNodeInfoRequest {}).await.expect("GetNodeInfo with mTLS");

    node.stop().await;
}

#[test]
fn bad_pem_is_a_precise_error() {
    let pki = pki();
    let settings = |cert: &str, key: &str, ca: Option<&str>| TlsSettings {
        cert_chain_pem: cert.as_bytes().to_vec(),
        key_pem: key.as_bytes().to_vec(),
        client_ca_pem: ca.map(|c| c.as_bytes().to_vec()),
        require_pq: false,
    };
    let err = |s: TlsSettings| atp_server::tls::server_config(&s).unwrap_err().to_string();
    assert!(err(settings("junk", &pki.server_key_pem, None)).starts_with("certificate:"));
    assert!(err(settings(&pki.server_cert_pem, "junk", None)).starts_with("private key:"));
    assert!(
        err(settings(&pki.server_cert_pem, &pki.client_key_pem, None))
            .starts_with("certificate and key:")
    );
    assert!(
        err(settings(&pki.server_cert_pem, &pki.server_key_pem, Some("junk")))
            .starts_with("client CA:")
    );
}

/// Records the client certificate of every call and makes the holder of one certificate the
/// admin: the shape of an enterprise authenticator that binds principals to certificates.
struct CertificateAuthenticator {
    admin_fingerprint: String,
    seen: std::sync::Mutex<Vec<(String, Option<String>)>>,
}

impl Authenticator for CertificateAuthenticator {
    fn authenticate<'a>(
        &'a self,
        call: &'a CallInfo,
    ) -> SeamFuture<'a, Result<Principal, atp_server::ServerError>> {
        Box::pin(async move {
            let fingerprint = call.client_certificate.as_ref().map(ClientCertificate::fingerprint);
            self.seen.lock().unwrap().push((call.operation.clone(), fingerprint.clone()));
            Ok(match fingerprint {
                Some(f) if f == self.admin_fingerprint => Principal::Admin,
                _ => Principal::Anonymous,
            })
        })
    }
}

fn certificate_node_options(
    pki: &Pki,
    client_ca: bool,
    authenticator: Arc<CertificateAuthenticator>,
) -> atp_test_node::NodeOptions {
    let mut extensions = Extensions::community(|_: &str| false);
    extensions.authenticator = authenticator;
    atp_test_node::NodeOptions {
        tls: Some(TlsSettings {
            cert_chain_pem: pki.server_cert_pem.clone().into_bytes(),
            key_pem: pki.server_key_pem.clone().into_bytes(),
            client_ca_pem: client_ca.then(|| pki.ca_pem.clone().into_bytes()),
            require_pq: false,
        }),
        extensions: Some(extensions),
        checkpointer: false,
        ..atp_test_node::NodeOptions::default()
    }
}

#[tokio::test]
async fn the_verified_client_certificate_reaches_the_authenticator() {
    let pki = pki();
    let client_der = CertificateDer::from_pem_slice(pki.client_cert_pem.as_bytes()).unwrap();
    let expected = {
        use sha2::Digest as _;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(client_der.as_ref())))
    };
    assert_eq!(ClientCertificate::from_der(client_der.as_ref()).fingerprint(), expected);
    let authenticator = Arc::new(CertificateAuthenticator {
        admin_fingerprint: expected.clone(),
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let node = atp_test_node::TestNode::start_with(certificate_node_options(
        &pki,
        true,
        authenticator.clone(),
    ))
    .await;

    // gRPC: the certificate alone authenticates the admin (no bearer token is sent).
    let identity = Identity::from_pem(&pki.client_cert_pem, &pki.client_key_pem);
    let mut admin = tonic_client(&pki, node.addr, Some(identity)).await.expect("mTLS connect");
    admin
        .list_trust_anchors(pb::ListTrustAnchorsRequest {})
        .await
        .expect("the certificate's holder is the admin");

    // HTTP/1.1 on the same port: the VC-API route sees the same certificate.
    let key =
        rustls::pki_types::PrivateKeyDer::from_pem_slice(pki.client_key_pem.as_bytes()).unwrap();
    let mut config = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(&pki))
        .with_client_auth_cert(vec![client_der.clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut stream = handshake(node.addr, config).await.expect("mTLS handshake");
    stream
        .write_all(
            b"POST /credentials/issue HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
              Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        )
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    // Authenticated and authorised, the empty body is then refused on its merits.
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");

    let seen = authenticator.seen.lock().unwrap().clone();
    let operations: Vec<&str> = seen.iter().map(|(op, _)| op.as_str()).collect();
    assert!(operations.contains(&"POST /credentials/issue"), "{seen:?}");
    assert!(
        !seen.is_empty() && seen.iter().all(|(_, f)| f.as_deref() == Some(&*expected)),
        "{seen:?}"
    );
    node.stop().await;

    // Without a client CA nothing is verified, so no certificate is passed on: anonymous.
    let authenticator = Arc::new(CertificateAuthenticator {
        admin_fingerprint: expected,
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let node = atp_test_node::TestNode::start_with(certificate_node_options(
        &pki,
        false,
        authenticator.clone(),
    ))
    .await;
    let mut admin = tonic_client(&pki, node.addr, None).await.expect("TLS connect");
    let refused = admin.list_trust_anchors(pb::ListTrustAnchorsRequest {}).await.unwrap_err();
    assert_eq!(atp_test_node::reason(&refused), "AUTH_REQUIRED", "{refused:?}");
    let seen = authenticator.seen.lock().unwrap().clone();
    assert!(!seen.is_empty() && seen.iter().all(|(_, f)| f.is_none()), "{seen:?}");
    node.stop().await;
}
