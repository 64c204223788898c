//! The server: every `atp.v1` service, `grpc.health.v1`, server reflection and the HTTP routes
//! on one port, with message-size limits, a request deadline and a per-peer rate limit.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use atp_core::kel::SignedEvent;
use atp_grpc::v1::admin_service_server::AdminServiceServer;
use atp_grpc::v1::credential_service_server::CredentialServiceServer;
use atp_grpc::v1::identity_service_server::IdentityServiceServer;
use atp_grpc::v1::log_service_server::LogServiceServer;
use atp_grpc::v1::message_service_server::MessageServiceServer;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::service::{Interceptor, Routes};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Status};

use crate::admin::AdminServiceImpl;
use crate::credential::CredentialApi;
use crate::error::{Result, ServerError};
use crate::identity::IdentityServiceImpl;
use crate::log::LogServiceImpl;
use crate::message::MessageApi;
use crate::state::AppState;

/// A per-peer token bucket: `rate` tokens per second, at most `burst`, keyed by peer IP, for
/// at most `max_peers` peers at once. A refused call gets RESOURCE_EXHAUSTED / `RATE_LIMITED`.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    inner: Arc<Mutex<HashMap<IpAddr, Bucket>>>,
    rate: f64,
    burst: f64,
    max_peers: usize,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A limiter allowing `per_second` sustained and `burst` at once per peer IP. A rate of 0
    /// disables it.
    pub fn new(per_second: u32, burst: u32, max_peers: usize) -> Self {
        RateLimiter {
            inner: Arc::new(Mutex::new(HashMap::new())),
            rate: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            max_peers: max_peers.max(1),
        }
    }

    /// Takes one token for `ip`; `false` when its bucket is empty.
    pub fn check(&self, ip: IpAddr) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        // A panic elsewhere while the map was held leaves it consistent (every update is one
        // assignment): keep limiting rather than fail open or refuse everyone.
        let mut map = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !map.contains_key(&ip) && map.len() >= self.max_peers {
            // A full bucket is the same as no bucket: forget those first, then the stalest.
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
            if map.len() >= self.max_peers
                && let Some(oldest) = map.iter().min_by_key(|(_, b)| b.last).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let b = map.entry(ip).or_insert(Bucket { tokens: self.burst, last: now });
        b.tokens =
            (b.tokens + now.duration_since(b.last).as_secs_f64() * self.rate).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Interceptor for RateLimiter {
    fn call(&mut self, request: Request<()>) -> std::result::Result<Request<()>, Status> {
        match request.remote_addr() {
            Some(peer) if !self.check(peer.ip()) => Err(ServerError::RateLimited.to_status()),
            _ => Ok(request),
        }
    }
}

/// Makes sure the node's own key event log is in the store: submits each event that is
/// missing (verified like any other submission). Returns how many were added.
pub async fn ensure_kel(state: &AppState, events: &[SignedEvent]) -> Result<usize> {
    let mut added = 0;
    for e in events {
        let json = e.canonical_bytes()?;
        let call = crate::extensions::CallInfo {
            operation: "node.ensure_kel".into(),
            ..Default::default()
        };
        let r = crate::identity::submit_event(state, &call, &json).await?;
        if r.outcome == atp_grpc::v1::SubmitEventOutcome::Accepted as i32 {
            added += 1;
        }
    }
    Ok(added)
}

/// Every gRPC service and the HTTP routes of [`crate::http::router`], as one router.
pub async fn routes(state: AppState) -> Result<Routes> {
    let max = state.settings.limits.max_message_bytes;
    let limiter = RateLimiter::new(
        state.settings.limits.rate_limit_per_second,
        state.settings.limits.rate_limit_burst,
        state.settings.limits.rate_limit_max_peers,
    );

    let (health, health_service) = tonic_health::server::health_reporter();
    crate::health::spawn_watch(&state, health).await;
    crate::trust_job::spawn(&state);
    crate::cluster::spawn_purge(&state);
    crate::cluster::spawn_kel_feed(&state);
    crate::audit::spawn_sealer(&state);
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(atp_grpc::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServerError::internal(format!("reflection: {e}")))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(atp_grpc::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServerError::internal(format!("reflection: {e}")))?;

    // Each atp.v1 service: its message-size limits, the per-peer rate limit, and around both
    // the per-call observation, so that a refused call is observed too.
    let observe = crate::observe::ObserveLayer::new(state.clone());
    macro_rules! limited {
        ($server:expr) => {
            tower::Layer::layer(
                &observe,
                InterceptedService::new(
                    $server.max_decoding_message_size(max).max_encoding_message_size(max),
                    limiter.clone(),
                ),
            )
        };
    }

    // The HTTP routes first: `Routes::from` keeps their fallback, then the gRPC services are
    // added by path. Axum's `ConnectInfo` is filled from tonic's `TcpConnectInfo`, so routes
    // can extract the peer address.
    // The HTTP routes share the per-peer budget of the gRPC services (one bucket per IP).
    let http = crate::http::router(state.clone())
        .layer(axum::middleware::from_fn_with_state(limiter.clone(), limit_http))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe_http))
        .layer(axum::middleware::map_request(connect_info));
    let routes = Routes::from(http)
        .add_service(limited!(IdentityServiceServer::new(IdentityServiceImpl::new(state.clone()))))
        .add_service(limited!(CredentialServiceServer::new(CredentialApi::new(state.clone()))))
        .add_service(limited!(MessageServiceServer::new(MessageApi::new(state.clone()))))
        .add_service(limited!(LogServiceServer::new(LogServiceImpl::new(state.clone()))))
        .add_service(limited!(AdminServiceServer::new(AdminServiceImpl::new(state.clone()))))
        .add_service(limited!(atp_grpc::v1::audit_service_server::AuditServiceServer::new(
            crate::audit_service::AuditServiceImpl::new(state.clone())
        )))
        .add_service(limited!(atp_grpc::v1::trust_service_server::TrustServiceServer::new(
            crate::trust::TrustApi::new(state.clone())
        )))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    Ok(routes)
}

/// Refuses an HTTP request over its peer's budget: 429 problem details, reason `RATE_LIMITED`.
async fn limit_http(
    axum::extract::State(limiter): axum::extract::State<RateLimiter>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0);
    match peer {
        Some(peer) if !limiter.check(peer.ip()) => {
            crate::http::problem(&ServerError::RateLimited, false)
        }
        _ => next.run(req).await,
    }
}

/// Reports every HTTP request to the observer like an RPC: `method` is `GET /route/{template}`
/// (the matched route, never the raw path), `outcome` is `OK` for a 2xx answer and the status
/// code (`404`) otherwise.
async fn observe_http(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route =
        req.extensions().get::<axum::extract::MatchedPath>().map_or("unmatched", |p| p.as_str());
    let method = format!("{} {route}", req.method());
    let peer = req.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().map(|c| c.0);
    let response = next.run(req).await;
    let status = response.status();
    let outcome = if status.is_success() { "OK" } else { status.as_str() };
    state.extensions.observer.on_rpc(&crate::extensions::RpcEvent {
        method: &method,
        peer,
        outcome,
        elapsed: started.elapsed(),
    });
    response
}

async fn connect_info(mut req: axum::extract::Request) -> axum::extract::Request {
    if req.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().is_none()
        && let Some(addr) = crate::observe::peer_of(req.extensions())
    {
        req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
    }
    req
}

/// Serves everything on `listener` until `shutdown` completes, then drains in-flight requests.
/// Bind `127.0.0.1:0` in tests and read the port from the listener first.
pub async fn serve_with_incoming_shutdown(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let routes = routes(state.clone()).await?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let shutdown = drain_then_stop(state.clone(), shutdown);
    server(&state)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| ServerError::Unavailable(format!("server failed: {e}")))
}

/// Like [`serve_with_incoming_shutdown`], over TLS: every connection on `listener` is a TLS
/// connection configured by `tls` (see [`crate::tls::server_config`]). A failed handshake
/// drops that connection only.
pub async fn serve_tls_with_incoming_shutdown(
    state: AppState,
    listener: TcpListener,
    tls: Arc<crate::tls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let routes = routes(state.clone()).await?;
    let incoming = crate::tls::incoming(listener, tls);
    let shutdown = drain_then_stop(state.clone(), shutdown);
    server(&state)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| ServerError::Unavailable(format!("server failed: {e}")))
}

/// Once `shutdown` completes: health turns NOT_SERVING, and the server keeps serving for the
/// drain grace before it stops accepting.
async fn drain_then_stop(state: AppState, shutdown: impl Future<Output = ()>) {
    shutdown.await;
    crate::health::start_draining(&state);
    tokio::time::sleep(state.settings.drain_grace).await;
}

fn server(state: &AppState) -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .accept_http1(true)
        .timeout(state.settings.limits.request_timeout)
}
