//! The connection to the nodes: several endpoints for failover, TLS, retries with backoff on
//! transient errors, and an optional bearer token (admin token or session token).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// How failed calls are retried. A call is retried only on transient failures: the node is
/// unreachable or overloaded (`UNAVAILABLE`, `RESOURCE_EXHAUSTED` without a protocol reason,
/// `DEADLINE_EXCEEDED`). Each retry moves to the next endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total (at least 1).
    pub attempts: u32,
    /// The delay before the first retry; it doubles on each retry, with jitter.
    pub initial_backoff: Duration,
    /// The longest delay between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// Where the nodes are and how to reach them.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Node endpoints, tried in order (`http://host:port` or `https://host:port`).
    pub endpoints: Vec<String>,
    /// PEM of the CA certificate(s) that sign the nodes' TLS certificates. Without it, `https`
    /// endpoints are checked against the system's roots.
    pub ca_certificate_pem: Option<Vec<u8>>,
    /// Per-call deadline.
    pub timeout: Duration,
    /// Connection deadline.
    pub connect_timeout: Duration,
    /// Retries on transient errors.
    pub retry: RetryPolicy,
}

impl NodeOptions {
    /// Options for one endpoint with the defaults (10 s per call, 5 s to connect, 4 attempts).
    pub fn new(endpoint: impl Into<String>) -> Self {
        NodeOptions {
            endpoints: vec![endpoint.into()],
            ca_certificate_pem: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }
}

struct NodeEndpoint {
    url: String,
    channel: Channel,
}

/// A client of one logical node reachable at several endpoints.
#[derive(Clone)]
pub(crate) struct NodeClient {
    endpoints: Arc<Vec<NodeEndpoint>>,
    preferred: Arc<AtomicUsize>,
    retry: RetryPolicy,
    bearer: Arc<RwLock<Option<Zeroizing<String>>>>,
}

impl std::fmt::Debug for NodeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeClient")
            .field("endpoints", &self.urls())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// A bound on the endpoint list, so that a misconfiguration cannot make a call loop long.
const MAX_ENDPOINTS: usize = 16;

impl NodeClient {
    /// Channels are created lazily: nothing is dialled until the first call.
    pub(crate) fn new(options: &NodeOptions) -> Result<Self> {
        if options.endpoints.is_empty() {
            return Err(Error::InvalidEndpoint {
                endpoint: String::new(),
                detail: "no node endpoint given (set ATP_NODE or pass one)".into(),
            });
        }
        if options.endpoints.len() > MAX_ENDPOINTS {
            return Err(Error::InvalidEndpoint {
                endpoint: options.endpoints.join(","),
                detail: format!("at most {MAX_ENDPOINTS} endpoints"),
            });
        }
        let mut endpoints = Vec::with_capacity(options.endpoints.len());
        for url in &options.endpoints {
            let bad = |detail: String| Error::InvalidEndpoint { endpoint: url.clone(), detail };
            let https = url.starts_with("https://");
            if !https && !url.starts_with("http://") {
                return Err(bad("must start with http:// or https://".into()));
            }
            let mut endpoint = Endpoint::from_shared(url.clone())
                .map_err(|e| bad(e.to_string()))?
                .timeout(options.timeout)
                .connect_timeout(options.connect_timeout)
                .tcp_nodelay(true);
            if https {
                let mut tls = ClientTlsConfig::new();
                tls = match &options.ca_certificate_pem {
                    Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
                    None => tls.with_native_roots(),
                };
                endpoint = endpoint.tls_config(tls).map_err(|e| bad(format!("TLS: {e}")))?;
            } else if options.ca_certificate_pem.is_some() {
                return Err(bad(
                    "a CA certificate was given for a plaintext http:// endpoint".into()
                ));
            }
            endpoints.push(NodeEndpoint { url: url.clone(), channel: endpoint.connect_lazy() });
        }
        Ok(NodeClient {
            endpoints: Arc::new(endpoints),
            preferred: Arc::new(AtomicUsize::new(0)),
            retry: RetryPolicy { attempts: options.retry.attempts.max(1), ..options.retry },
            bearer: Arc::new(RwLock::new(None)),
        })
    }

    pub(crate) fn urls(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.url.clone()).collect()
    }

    /// Sends `authorization: Bearer <token>` with every later call (`None` stops it).
    pub(crate) fn set_bearer(&self, token: Option<&str>) {
        let mut guard = self.bearer.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = token.map(|t| Zeroizing::new(t.to_owned()));
    }

    /// A request carrying the bearer token, if one is set.
    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        let guard = self.bearer.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(token) = guard.as_ref()
            && let Ok(value) = MetadataValue::try_from(format!("Bearer {}", token.as_str()))
        {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// Runs `call` against the preferred endpoint, retrying transient failures on the next
    /// endpoints with exponential backoff. Every ATP RPC is safe to repeat: writes are
    /// idempotent (a repeated KEL event is a duplicate) or guarded by sequence numbers.
    pub(crate) async fn call<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let n = self.endpoints.len();
        let mut backoff = self.retry.initial_backoff;
        let mut last: Option<Status> = None;
        for attempt in 0..self.retry.attempts {
            if attempt > 0 {
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(self.retry.max_backoff);
            }
            let index = self.preferred.load(Ordering::Relaxed) % n;
            match call(self.endpoints[index].channel.clone()).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if is_transient(&status) => {
                    // Fail over: the next attempt goes to the next endpoint.
                    let _ = self.preferred.compare_exchange(
                        index,
                        (index + 1) % n,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    last = Some(status);
                }
                Err(status) => return Err(Error::rejected(operation, &status)),
            }
        }
        let status = last.unwrap_or_else(|| Status::unavailable("no attempt made"));
        if status.code() == Code::Unavailable || status.code() == Code::Unknown {
            Err(Error::NodeUnreachable {
                endpoints: self.urls().join(", "),
                detail: transport_detail(&status),
            })
        } else {
            Err(Error::rejected(operation, &status))
        }
    }
}

/// Unavailable and deadline errors, and overload without a protocol reason. `UNKNOWN` comes
/// from tonic for transport failures below gRPC (a reset connection); a node always answers
/// with a precise code.
fn is_transient(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown => {
            atp_grpc::status::reason(status).is_none()
        }
        Code::ResourceExhausted => {
            atp_grpc::status::reason(status).is_none_or(|r| r == "RATE_LIMITED")
        }
        _ => false,
    }
}

fn transport_detail(status: &Status) -> String {
    use std::error::Error as _;
    let mut detail = status.message().to_owned();
    let mut source = status.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = s.source();
    }
    detail
}

/// Up to 25 % random jitter, so that clients that failed together do not retry together.
fn jitter(base: Duration) -> Duration {
    let mut b = [0u8; 2];
    if atp_crypto::random_bytes(&mut b).is_err() {
        return base;
    }
    let fraction = f64::from(u16::from_be_bytes(b)) / f64::from(u16::MAX) * 0.25;
    base.mul_f64(1.0 + fraction)
}
