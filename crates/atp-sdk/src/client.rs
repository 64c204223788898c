//! The connection to the nodes: calls spread over several endpoints (the nodes of a cluster),
//! failed endpoints set aside for a while, TLS, retries with backoff on transient errors, and
//! an optional bearer token (admin token or session token).

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// How failed calls are retried. A call is retried only on transient failures: the node is
/// unreachable, cannot serve now or is overloaded (`UNAVAILABLE` without a protocol reason or
/// with the reason `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED` for a rate limit).
/// Each retry goes to another endpoint when there is one.
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
    /// Node endpoints (`http://host:port` or `https://host:port`): the nodes of one cluster, or
    /// one node. Calls take turns over the healthy ones.
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
    /// How long an endpoint that failed a call (unreachable, unavailable, too slow) is passed
    /// over. When every endpoint is set aside, calls go to the one that comes back first.
    pub unhealthy_for: Duration,
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
            unhealthy_for: Duration::from_secs(5),
        }
    }
}

struct NodeEndpoint {
    url: String,
    channel: Channel,
    /// Until when this endpoint is passed over, in milliseconds after the client's `epoch`
    /// (0: healthy).
    unhealthy_until_ms: AtomicU64,
}

/// A client of one logical node reachable at several endpoints.
#[derive(Clone)]
pub(crate) struct NodeClient {
    endpoints: Arc<Vec<NodeEndpoint>>,
    /// The turn: each call starts at the next endpoint.
    turn: Arc<AtomicUsize>,
    epoch: Instant,
    unhealthy_for: Duration,
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
            endpoints.push(NodeEndpoint {
                url: url.clone(),
                channel: endpoint.connect_lazy(),
                unhealthy_until_ms: AtomicU64::new(0),
            });
        }
        Ok(NodeClient {
            endpoints: Arc::new(endpoints),
            turn: Arc::new(AtomicUsize::new(0)),
            epoch: Instant::now(),
            unhealthy_for: options.unhealthy_for,
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

    /// Runs `call` against the endpoint whose turn it is, passing over the ones set aside,
    /// and retries transient failures on other endpoints with exponential backoff. Every ATP
    /// RPC is safe to repeat: writes are idempotent (a repeated KEL event is a duplicate) or
    /// guarded by sequence numbers.
    pub(crate) async fn call<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let mut backoff = self.retry.initial_backoff;
        let mut last: Option<Status> = None;
        let mut tried = 0u32;
        for attempt in 0..self.retry.attempts {
            if attempt > 0 {
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(self.retry.max_backoff);
            }
            let index = self.pick(tried);
            tried |= 1 << index;
            let endpoint = &self.endpoints[index];
            match call(endpoint.channel.clone()).await {
                Ok(response) => {
                    endpoint.unhealthy_until_ms.store(0, Ordering::Relaxed);
                    return Ok(response.into_inner());
                }
                Err(status) if is_transient(&status) => {
                    if status.code() != Code::ResourceExhausted {
                        self.set_aside(endpoint);
                    }
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

    /// The endpoint for the next attempt: from the one whose turn it is, the first healthy
    /// endpoint not yet `tried` by this call (a bit per index); else the first healthy one;
    /// else the untried one that comes back first, else the one that comes back first.
    fn pick(&self, tried: u32) -> usize {
        let n = self.endpoints.len();
        let start = self.turn.fetch_add(1, Ordering::Relaxed) % n;
        let now = self.now_ms();
        let order = || (0..n).map(|i| (start + i) % n);
        let healthy =
            |i: &usize| self.endpoints[*i].unhealthy_until_ms.load(Ordering::Relaxed) <= now;
        let untried = |i: &usize| tried & (1 << *i) == 0;
        order()
            .find(|i| healthy(i) && untried(i))
            .or_else(|| order().find(healthy))
            .or_else(|| order().filter(untried).min_by_key(|i| self.back_at(*i)))
            .unwrap_or_else(|| order().min_by_key(|i| self.back_at(*i)).unwrap_or(start))
    }

    fn back_at(&self, index: usize) -> u64 {
        self.endpoints[index].unhealthy_until_ms.load(Ordering::Relaxed)
    }

    /// Passes over `endpoint` for `unhealthy_for`.
    fn set_aside(&self, endpoint: &NodeEndpoint) {
        let until = self.now_ms().saturating_add(duration_ms(self.unhealthy_for)).max(1);
        endpoint.unhealthy_until_ms.store(until, Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        duration_ms(self.epoch.elapsed())
    }

    /// The endpoints passed over now (for diagnostics and tests).
    pub(crate) fn unhealthy(&self) -> Vec<String> {
        let now = self.now_ms();
        self.endpoints
            .iter()
            .filter(|e| e.unhealthy_until_ms.load(Ordering::Relaxed) > now)
            .map(|e| e.url.clone())
            .collect()
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Unavailable and deadline errors, and overload without a protocol reason. `UNKNOWN` comes
/// from tonic for transport failures below gRPC (a reset connection); a node always answers
/// with a precise code. A node that cannot serve now (its database is out of reach, it is
/// shutting down) answers `UNAVAILABLE` with the reason `UNAVAILABLE`: another node may.
fn is_transient(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable => atp_grpc::status::reason(status).is_none_or(|r| r == "UNAVAILABLE"),
        Code::DeadlineExceeded | Code::Unknown => atp_grpc::status::reason(status).is_none(),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A client of `n` endpoints; channels are lazy, so nothing is dialled.
    async fn client(n: u16) -> NodeClient {
        let mut options = NodeOptions::new("");
        options.endpoints = (0..n).map(|i| format!("http://127.0.0.1:{}", 1000 + i)).collect();
        NodeClient::new(&options).unwrap()
    }

    fn picks(c: &NodeClient, count: usize) -> Vec<usize> {
        (0..count).map(|_| c.pick(0)).collect()
    }

    #[tokio::test]
    async fn calls_take_turns_over_the_healthy_endpoints() {
        let c = client(3).await;
        assert_eq!(picks(&c, 6), [0, 1, 2, 0, 1, 2]);
        c.set_aside(&c.endpoints[1]);
        assert_eq!(c.unhealthy(), ["http://127.0.0.1:1001"]);
        let after = picks(&c, 6);
        assert!(!after.contains(&1), "{after:?}");
        assert!(after.contains(&0) && after.contains(&2), "{after:?}");
    }

    #[tokio::test]
    async fn a_retry_goes_to_an_endpoint_the_call_has_not_tried() {
        let c = client(3).await;
        for _ in 0..6 {
            let first = c.pick(0);
            let second = c.pick(1 << first);
            let third = c.pick((1 << first) | (1 << second));
            let mut all = [first, second, third];
            all.sort_unstable();
            assert_eq!(all, [0, 1, 2]);
        }
    }

    #[tokio::test]
    async fn with_every_endpoint_set_aside_the_one_back_first_is_used() {
        let mut options = NodeOptions::new("");
        options.endpoints = vec!["http://127.0.0.1:1000".into(), "http://127.0.0.1:1001".into()];
        options.unhealthy_for = Duration::from_secs(60);
        let c = NodeClient::new(&options).unwrap();
        c.set_aside(&c.endpoints[0]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.set_aside(&c.endpoints[1]);
        assert_eq!(c.unhealthy().len(), 2);
        assert_eq!(picks(&c, 4), [0, 0, 0, 0]);
        // Within one call, the untried endpoint comes before a repeat.
        assert_eq!(c.pick(1), 1);
    }

    #[test]
    fn a_node_that_cannot_serve_now_is_retried_elsewhere_and_a_refusal_is_not() {
        let unavailable = atp_grpc::status::error(Code::Unavailable, "UNAVAILABLE", "db", &[]);
        assert!(is_transient(&unavailable));
        assert!(is_transient(&Status::unavailable("connection refused")));
        let no_checkpoint =
            atp_grpc::status::error(Code::Unavailable, "CHECKPOINT_UNAVAILABLE", "none", &[]);
        assert!(!is_transient(&no_checkpoint));
        let invalid = atp_grpc::status::error(Code::InvalidArgument, "FIELD_INVALID", "x", &[]);
        assert!(!is_transient(&invalid));
    }
}
