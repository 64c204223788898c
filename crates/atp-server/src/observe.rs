//! Per-call observation of the gRPC services, as one tower layer: every call of an `atp.v1`
//! service is reported to the [`Observer`](crate::extensions::Observer) with its method, peer,
//! outcome and duration, whatever answered it (the handler, the rate limit or tonic itself).
//! The handlers carry no bookkeeping; this is the one place that does it, and the place for
//! per-call hooks to come.
//!
//! The outcome is read back from the answer, so it is exactly what the client sees: `OK`, or
//! the reason code of the `ErrorInfo` that [`ServerError::to_status`](crate::error::ServerError)
//! attached. A status without one (tonic's own refusals, such as a message over the size
//! limit) is reported by its gRPC code name ([`atp_grpc::status::code_name`]).
//!
//! A call is observed when it gets an answer. One that tonic's request timeout ends, or that
//! the client cancels, drops this layer's future and is not observed.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::extensions::RpcEvent;
use crate::state::AppState;

/// What a path that names no `atp.v1` method ([`atp_grpc::method_types`]) is reported as,
/// after the service's name (`atp.v1.IdentityService/unmatched`), whoever answered it (tonic's
/// UNIMPLEMENTED, or the rate limit before it): the method's name is the client's to choose,
/// so it never becomes a metrics label. The service's name is bounded: only a known service's
/// path reaches this layer.
pub const UNMATCHED_METHOD: &str = "unmatched";

/// Wraps a gRPC service so that each call is observed.
#[derive(Clone)]
pub struct ObserveLayer {
    state: AppState,
}

impl ObserveLayer {
    /// Reports to `state`'s observer.
    pub fn new(state: AppState) -> Self {
        ObserveLayer { state }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Observed<S> {
        Observed { inner, state: self.state.clone() }
    }
}

/// A gRPC service whose calls are observed (see [`ObserveLayer`]).
#[derive(Clone)]
pub struct Observed<S> {
    inner: S,
    state: AppState,
}

impl<S: NamedService> NamedService for Observed<S> {
    const NAME: &'static str = S::NAME;
}

/// The peer of a call, from what tonic's listener put in the request's extensions (plain
/// TCP or TLS).
pub(crate) fn peer_of(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<TcpConnectInfo>()
        .or_else(|| extensions.get::<TlsConnectInfo<TcpConnectInfo>>().map(|c| c.get_ref()))
        .and_then(TcpConnectInfo::remote_addr)
}

/// `OK`, the ATP reason code, or the gRPC code name, from the answer's headers. A unary
/// success carries its status in the trailers, so no `grpc-status` header means success
/// (every `atp.v1` method is unary).
fn outcome_of(headers: &http::HeaderMap) -> String {
    match tonic::Status::from_header_map(headers) {
        None => "OK".to_owned(),
        Some(status) => atp_grpc::status::reason(&status)
            .unwrap_or_else(|| atp_grpc::status::code_name(status.code()).to_owned()),
    }
}

/// The method a path names, or `<service>/unmatched` when it names none.
fn method_of(path: &str) -> String {
    let method = path.trim_start_matches('/');
    if atp_grpc::method_types().contains_key(method) {
        return method.to_owned();
    }
    let service = method.split_once('/').map_or(method, |(service, _)| service);
    format!("{service}/{UNMATCHED_METHOD}")
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for Observed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = method_of(request.uri().path());
        let peer = peer_of(request.extensions());
        let state = self.state.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let outcome = outcome_of(response.headers());
            state.extensions.observer.on_rpc(&RpcEvent {
                method: &method,
                peer,
                outcome: &outcome,
                elapsed: started.elapsed(),
            });
            Ok(response)
        })
    }
}
