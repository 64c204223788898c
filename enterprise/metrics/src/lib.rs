//! ATP enterprise edition: Prometheus metrics.
//!
//! [`Metrics`] implements the `atp-server` [`Observer`] seam and keeps one Prometheus registry:
//!
//! - the standard gRPC server metrics (`grpc_server_started_total`,
//!   `grpc_server_handled_total`, `grpc_server_msg_received_total`,
//!   `grpc_server_msg_sent_total`, the histogram `grpc_server_handling_seconds`), with the
//!   method type read from the `atp.v1` descriptors and the gRPC code derived from the ATP reason
//!   code by the server's single mapping ([`atp_server::error::grpc_code`]);
//! - the same for HTTP routes (`http_server_requests_total`,
//!   `http_server_request_duration_seconds`), labelled by route template, never by path;
//! - the process metrics (`process_*`, Linux);
//! - ATP domain metrics under `atp_` in base units, refreshed from the store on every scrape
//!   (see [`Metrics::refresh_from_store`]). No label ever holds a DID, a user or a path.
//!
//! [`serve`] answers `GET /metrics` on a separate admin listener (default `127.0.0.1:9464`).
//! Off loopback it must be protected: [`MetricsConfig::validate`] refuses a non-loopback listener
//! without `require_auth`, and with it every scrape is authenticated and authorized through the
//! node's [`Extensions`] (operation `metrics.read`), so that SSO and RBAC apply.
//!
//! The observer only sees finished calls, so `grpc_server_started_total` and the message counts
//! are recorded when a call finishes (all `atp.v1` methods are unary: one message received per
//! call, one sent per successful call).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atp_server::Extensions;
use atp_server::extensions::{CallInfo, DomainEvent, Observer, RpcEvent};
use atp_store::Store;
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use serde::Deserialize;

/// The default admin listener of `/metrics`.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);

/// The operation a scrape is authorized for, when [`MetricsConfig::require_auth`] is on.
pub const METRICS_OPERATION: &str = "metrics.read";

/// Buckets of the latency histograms, in seconds (0.5 ms to 10 s).
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Buckets of the trust computation's duration, in seconds (10 ms to 10 min: it reads every
/// piece of evidence and may cover a million agents).
const RECOMPUTE_BUCKETS: &[f64] =
    &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// The `level` label values of `atp_trust_agents`, indexed by level.
const TRUST_LEVELS: [&str; 5] = ["0", "1", "2", "3", "4"];

/// The longest label value taken from an event; longer values become `other`.
const MAX_LABEL_LEN: usize = 64;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The `[metrics]` configuration is unusable.
    #[error("[metrics] {0}")]
    Config(String),
    /// A metric could not be registered (a bug: duplicate or invalid name).
    #[error("registering metrics: {0}")]
    Registry(#[from] prometheus::Error),
    /// The admin listener failed.
    #[error("metrics listener: {0}")]
    Io(#[from] std::io::Error),
}

/// The `[metrics]` section of the node configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// The admin listener. Default `127.0.0.1:9464`.
    pub listen: SocketAddr,
    /// Authenticate and authorize every scrape through the node's extensions (bearer token,
    /// SSO, RBAC) with the operation [`METRICS_OPERATION`]. Default `false`; required when
    /// `listen` is not a loopback address.
    pub require_auth: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { listen: DEFAULT_LISTEN, require_auth: false }
    }
}

impl MetricsConfig {
    /// Refuses a listener off loopback without authentication: metrics reveal traffic patterns,
    /// so exposing them is an explicit decision.
    pub fn validate(&self) -> Result<(), MetricsError> {
        if !self.listen.ip().is_loopback() && !self.require_auth {
            return Err(MetricsError::Config(format!(
                "listen = \"{}\" is not a loopback address: set require_auth = true (or listen \
                 on 127.0.0.1 / [::1])",
                self.listen
            )));
        }
        Ok(())
    }
}

/// A label value taken from an event: kept when short and made of `[A-Za-z0-9_.:-]`, else
/// `other` (so that nothing unbounded or personal becomes a label).
fn bounded_label(value: &str) -> &str {
    let ok = !value.is_empty()
        && value.len() <= MAX_LABEL_LEN
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if ok { value } else { "other" }
}

/// The name of a `atp_grpc::tonic::Code` as the Prometheus gRPC conventions spell it (`OK`,
/// `InvalidArgument`, …).
fn code_name(code: atp_grpc::tonic::Code) -> &'static str {
    use atp_grpc::tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

struct GrpcMetrics {
    started: IntCounterVec,
    handled: IntCounterVec,
    received: IntCounterVec,
    sent: IntCounterVec,
    seconds: HistogramVec,
}

struct HttpMetrics {
    requests: IntCounterVec,
    seconds: HistogramVec,
}

struct DomainMetrics {
    identities: IntGaugeVec,
    kel_events: IntCounterVec,
    kel_events_stored: IntGauge,
    kel_forks: IntCounterVec,
    credentials: IntCounterVec,
    credentials_verified: IntCounterVec,
    signature_verifications: IntCounterVec,
    trust_recompute: HistogramVec,
    trust_agents: IntGaugeVec,
    log_size: IntGauge,
    checkpoints_signed: IntCounterVec,
    checkpoint_size: IntGauge,
    checkpoint_age: Gauge,
    store_query: HistogramVec,
    store_errors: IntCounterVec,
    scrape_errors: GaugeVec,
}

/// The node's metrics: an [`Observer`] that fills a Prometheus registry.
pub struct Metrics {
    registry: Registry,
    grpc: GrpcMetrics,
    http: HttpMetrics,
    domain: DomainMetrics,
    method_types: &'static HashMap<String, &'static str>,
    /// When the last checkpoint was signed (Unix milliseconds; 0 = none seen yet).
    last_checkpoint_ms: AtomicI64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, MetricsError> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<HistogramVec, MetricsError> {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Metrics {
    /// A fresh registry with every metric of this crate, `atp_build_info{version, edition}`
    /// set to 1, and (on Linux) the process collector.
    pub fn new(version: &str) -> Result<Self, MetricsError> {
        let r = Registry::new();
        const GRPC: &[&str] = &["grpc_type", "grpc_service", "grpc_method"];
        const GRPC_CODE: &[&str] = &["grpc_type", "grpc_service", "grpc_method", "grpc_code"];
        let grpc = GrpcMetrics {
            started: counter(&r, "grpc_server_started_total", "RPCs started on the server.", GRPC)?,
            handled: counter(
                &r,
                "grpc_server_handled_total",
                "RPCs completed on the server, regardless of success or failure.",
                GRPC_CODE,
            )?,
            received: counter(
                &r,
                "grpc_server_msg_received_total",
                "RPC stream messages received on the server.",
                GRPC,
            )?,
            sent: counter(
                &r,
                "grpc_server_msg_sent_total",
                "gRPC stream messages sent by the server.",
                GRPC,
            )?,
            seconds: histogram(
                &r,
                "grpc_server_handling_seconds",
                "Response latency of RPCs handled by the server, in seconds.",
                GRPC,
            )?,
        };
        let http = HttpMetrics {
            requests: counter(
                &r,
                "http_server_requests_total",
                "HTTP requests completed, by method, route template and status code.",
                &["method", "route", "status"],
            )?,
            seconds: histogram(
                &r,
                "http_server_request_duration_seconds",
                "HTTP request latency, in seconds.",
                &["method", "route"],
            )?,
        };
        let identities = IntGaugeVec::new(
            Opts::new(
                "atp_identities",
                "Identities (did:atp key event logs) held, by state (active, deactivated).",
            ),
            &["state"],
        )?;
        r.register(Box::new(identities.clone()))?;
        let kel_events_stored =
            IntGauge::new("atp_kel_events_stored", "Key events held in the store.")?;
        r.register(Box::new(kel_events_stored.clone()))?;
        let log_size = IntGauge::new(
            "atp_log_size_entries",
            "Leaves of the transparency log (all entry kinds).",
        )?;
        r.register(Box::new(log_size.clone()))?;
        let checkpoint_size = IntGauge::new(
            "atp_checkpoint_tree_size",
            "Tree size of the latest signed checkpoint.",
        )?;
        r.register(Box::new(checkpoint_size.clone()))?;
        let checkpoint_age = Gauge::new(
            "atp_checkpoint_age_seconds",
            "Seconds since the latest checkpoint was signed (at scrape time).",
        )?;
        r.register(Box::new(checkpoint_age.clone()))?;
        let build_info = IntGaugeVec::new(
            Opts::new("atp_build_info", "Always 1; the labels describe the build."),
            &["version", "edition"],
        )?;
        r.register(Box::new(build_info.clone()))?;
        build_info.with_label_values(&[version, "enterprise"]).set(1);
        let scrape_errors = GaugeVec::new(
            Opts::new(
                "atp_metrics_store_refresh_failed",
                "1 when the last scrape could not read the store figures, else 0.",
            ),
            &["query"],
        )?;
        r.register(Box::new(scrape_errors.clone()))?;
        let domain = DomainMetrics {
            identities,
            kel_events: counter(
                &r,
                "atp_kel_events_total",
                "Key events accepted since start, by type.",
                &["type"],
            )?,
            kel_events_stored,
            kel_forks: counter(
                &r,
                "atp_kel_forks_detected_total",
                "Forks of key event logs detected since start.",
                &[],
            )?,
            credentials: counter(
                &r,
                "atp_credentials_total",
                "Credential operations since start: issued by the node, and status entries \
                 changed (revoked, suspended, reinstated, message_changed) by the node or by an \
                 external issuer's signed update.",
                &["operation"],
            )?,
            credentials_verified: counter(
                &r,
                "atp_credentials_verified_total",
                "Credential and presentation verifications since start (gRPC and VC-API), by \
                 kind and result (OK or the reason code).",
                &["kind", "result"],
            )?,
            signature_verifications: counter(
                &r,
                "atp_signature_verifications_total",
                "Signatures checked since start, by what was signed (kind), algorithm or \
                 cryptosuite, and result (ok or invalid).",
                &["kind", "algorithm", "result"],
            )?,
            trust_recompute: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "atp_trust_recompute_duration_seconds",
                        "Duration of the trust computations, in seconds.",
                    )
                    .buckets(RECOMPUTE_BUCKETS.to_vec()),
                    &[],
                )?;
                r.register(Box::new(h.clone()))?;
                h
            },
            trust_agents: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "atp_trust_agents",
                        "Agents (DIDs) at each trust level in the latest trust snapshot.",
                    ),
                    &["level"],
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            log_size,
            checkpoints_signed: counter(
                &r,
                "atp_checkpoints_signed_total",
                "Checkpoints signed since start.",
                &[],
            )?,
            checkpoint_size,
            checkpoint_age,
            store_query: histogram(
                &r,
                "atp_store_query_duration_seconds",
                "Latency of the store queries made by the metrics refresh, in seconds.",
                &["query"],
            )?,
            store_errors: counter(
                &r,
                "atp_store_errors_total",
                "Store queries that failed, by query.",
                &["query"],
            )?,
            scrape_errors,
        };
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(Metrics {
            registry: r,
            grpc,
            http,
            domain,
            method_types: atp_grpc::method_types(),
            last_checkpoint_ms: AtomicI64::new(0),
        })
    }

    /// The registry (for tests and for embedding more collectors).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Reads the store figures (identities, key events, log size, latest checkpoint) into the
    /// gauges, timing each query. A failing query is counted in `atp_store_errors_total` and
    /// flagged in `atp_metrics_store_refresh_failed`; the scrape still succeeds.
    pub async fn refresh_from_store(&self, store: &dyn Store) {
        let started = Instant::now();
        let stats = store.stats().await;
        self.domain.store_query.with_label_values(&["stats"]).observe(secs(started.elapsed()));
        match stats {
            Ok(s) => {
                self.domain.scrape_errors.with_label_values(&["stats"]).set(0.0);
                let deactivated = s.deactivated_identities.min(s.identities);
                self.domain
                    .identities
                    .with_label_values(&["active"])
                    .set(to_i64(s.identities - deactivated));
                self.domain.identities.with_label_values(&["deactivated"]).set(to_i64(deactivated));
                self.domain.kel_events_stored.set(to_i64(s.kel_events));
                self.domain.log_size.set(to_i64(s.log_size));
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: reading the store statistics failed");
                self.domain.store_errors.with_label_values(&["stats"]).inc();
                self.domain.scrape_errors.with_label_values(&["stats"]).set(1.0);
            }
        }
        let started = Instant::now();
        let latest = store.latest_checkpoint().await;
        self.domain
            .store_query
            .with_label_values(&["latest_checkpoint"])
            .observe(secs(started.elapsed()));
        match latest {
            Ok(Some(c)) => {
                self.domain.scrape_errors.with_label_values(&["latest_checkpoint"]).set(0.0);
                self.domain.checkpoint_size.set(to_i64(c.size));
                self.last_checkpoint_ms.fetch_max(c.created_at_ms, Ordering::Relaxed);
            }
            Ok(None) => {
                self.domain.scrape_errors.with_label_values(&["latest_checkpoint"]).set(0.0);
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: reading the latest checkpoint failed");
                self.domain.store_errors.with_label_values(&["latest_checkpoint"]).inc();
                self.domain.scrape_errors.with_label_values(&["latest_checkpoint"]).set(1.0);
            }
        }
    }

    /// The text exposition of every metric (`text/plain; version=0.0.4`), with the checkpoint
    /// age computed now.
    pub fn render(&self) -> Result<String, MetricsError> {
        let last = self.last_checkpoint_ms.load(Ordering::Relaxed);
        if last > 0 {
            #[allow(clippy::cast_precision_loss)] // milliseconds of age fit an f64 exactly
            self.domain.checkpoint_age.set((unix_ms().saturating_sub(last)).max(0) as f64 / 1e3);
        }
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out)
            .map_err(|_| MetricsError::Config("the exposition is not UTF-8".into()))
    }

    fn on_grpc(&self, e: &RpcEvent<'_>, service: &str, method: &str) {
        let grpc_type = self.method_types.get(e.method).copied().unwrap_or("unary");
        let labels = [grpc_type, service, method];
        let code = if e.outcome == "OK" {
            atp_grpc::tonic::Code::Ok
        } else {
            atp_server::error::grpc_code(e.outcome)
        };
        self.grpc.started.with_label_values(&labels).inc();
        self.grpc.received.with_label_values(&labels).inc();
        if code == atp_grpc::tonic::Code::Ok {
            self.grpc.sent.with_label_values(&labels).inc();
        }
        self.grpc.handled.with_label_values(&[grpc_type, service, method, code_name(code)]).inc();
        self.grpc.seconds.with_label_values(&labels).observe(secs(e.elapsed));
    }

    fn on_http(&self, e: &RpcEvent<'_>, verb: &str, route: &str) {
        // HTTP events carry the status code as their outcome (`200`), or `OK`.
        let status = if e.outcome == "OK" { "200" } else { bounded_label(e.outcome) };
        let verb = bounded_label(verb);
        self.http.requests.with_label_values(&[verb, route, status]).inc();
        self.http.seconds.with_label_values(&[verb, route]).observe(secs(e.elapsed));
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Route templates are short and made of path characters; anything else is `other`.
fn bounded_route(route: &str) -> &str {
    let ok = route.starts_with('/')
        && route.len() <= 128
        && route.bytes().all(|b| b.is_ascii_alphanumeric() || b"/{}_.-:".contains(&b));
    if ok { route } else { "other" }
}

impl Observer for Metrics {
    fn on_rpc(&self, e: &RpcEvent<'_>) {
        // gRPC: `atp.v1.Service/Method`; HTTP: `GET /route/{template}`.
        if let Some((verb, route)) = e.method.split_once(' ') {
            self.on_http(e, verb, bounded_route(route));
        } else if let Some((service, method)) = e.method.split_once('/')
            && self.method_types.contains_key(e.method)
        {
            self.on_grpc(e, service, method);
        } else if let Some((service, method)) = e.method.split_once('/') {
            // Not in the descriptors (health, reflection): still counted, with bounded labels.
            self.on_grpc(e, bounded_label(service), bounded_label(method));
        }
    }

    fn on_domain_event(&self, e: &DomainEvent<'_>) {
        match e {
            DomainEvent::KelEventAccepted { event_type, .. } => {
                self.domain.kel_events.with_label_values(&[bounded_label(event_type)]).inc();
            }
            DomainEvent::KelForkDetected { .. } => {
                self.domain.kel_forks.with_label_values(&[] as &[&str]).inc();
            }
            DomainEvent::CheckpointSigned { size } => {
                self.domain.checkpoints_signed.with_label_values(&[] as &[&str]).inc();
                self.domain.checkpoint_size.set(to_i64(*size));
                self.last_checkpoint_ms.fetch_max(unix_ms(), Ordering::Relaxed);
            }
            DomainEvent::Other { kind: "credential.issued", .. } => {
                self.domain.credentials.with_label_values(&["issued"]).inc();
            }
            DomainEvent::CredentialStatusChanged { purpose, set, cleared, .. } => {
                // The list is never a label; only its purpose and the direction of the change.
                let (set_as, cleared_as) = match *purpose {
                    "revocation" => ("revoked", "status_cleared"),
                    "suspension" => ("suspended", "reinstated"),
                    _ => ("message_changed", "message_changed"),
                };
                if *set > 0 {
                    self.domain.credentials.with_label_values(&[set_as]).inc_by(*set);
                }
                if *cleared > 0 {
                    self.domain.credentials.with_label_values(&[cleared_as]).inc_by(*cleared);
                }
            }
            DomainEvent::CredentialVerified { kind, result } => {
                self.domain
                    .credentials_verified
                    .with_label_values(&[bounded_label(kind), bounded_label(result)])
                    .inc();
            }
            DomainEvent::SignatureVerified { kind, algorithm, ok } => {
                let result = if *ok { "ok" } else { "invalid" };
                self.domain
                    .signature_verifications
                    .with_label_values(&[bounded_label(kind), bounded_label(algorithm), result])
                    .inc();
            }
            DomainEvent::TrustRecomputed { elapsed, agents_by_level } => {
                self.domain
                    .trust_recompute
                    .with_label_values(&[] as &[&str])
                    .observe(secs(*elapsed));
                for (level, count) in TRUST_LEVELS.iter().zip(agents_by_level) {
                    self.domain.trust_agents.with_label_values(&[level]).set(to_i64(*count));
                }
            }
            _ => {}
        }
    }
}

/// Fans every event out to several observers (e.g. the tracing observer and [`Metrics`]).
pub struct FanOutObserver(pub Vec<Arc<dyn Observer>>);

impl std::fmt::Debug for FanOutObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FanOutObserver({} observers)", self.0.len())
    }
}

impl Observer for FanOutObserver {
    fn on_rpc(&self, event: &RpcEvent<'_>) {
        for o in &self.0 {
            o.on_rpc(event);
        }
    }

    fn on_domain_event(&self, event: &DomainEvent<'_>) {
        for o in &self.0 {
            o.on_domain_event(event);
        }
    }
}

/// What the `/metrics` handler needs.
#[derive(Clone)]
struct Scrape {
    metrics: Arc<Metrics>,
    store: Option<Arc<dyn Store>>,
    /// `Some`: every scrape is authenticated and authorized ([`METRICS_OPERATION`]).
    auth: Option<Extensions>,
}

async fn metrics_handler(
    axum::extract::State(s): axum::extract::State<Scrape>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    headers: http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if let Some(ext) = &s.auth {
        let call = CallInfo::from_http(METRICS_OPERATION, &headers, Some(peer));
        if let Err(e) = ext.authorize(&call, METRICS_OPERATION, "metrics").await {
            let status =
                http::StatusCode::from_u16(e.http_status()).unwrap_or(http::StatusCode::FORBIDDEN);
            return (status, [(http::header::CONTENT_TYPE, "text/plain")], e.public_message())
                .into_response();
        }
    }
    if let Some(store) = &s.store {
        s.metrics.refresh_from_store(store.as_ref()).await;
    }
    match s.metrics.render() {
        Ok(text) => {
            ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: rendering failed");
            (http::StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable").into_response()
        }
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes. With `auth`, every scrape
/// goes through [`Extensions::authorize`] for [`METRICS_OPERATION`] (401 / 403 otherwise).
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    store: Option<Arc<dyn Store>>,
    auth: Option<Extensions>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), MetricsError> {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics_handler))
        .with_state(Scrape { metrics, store, auth });
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rpc(method: &str, outcome: &str) -> RpcEvent<'static> {
        RpcEvent {
            method: Box::leak(method.to_owned().into_boxed_str()),
            peer: None,
            outcome: Box::leak(outcome.to_owned().into_boxed_str()),
            elapsed: Duration::from_millis(3),
        }
    }

    #[test]
    fn grpc_outcomes_become_grpc_codes() {
        let m = Metrics::new("0.0.0-test").unwrap();
        m.on_rpc(&rpc("atp.v1.IdentityService/Resolve", "OK"));
        m.on_rpc(&rpc("atp.v1.IdentityService/Resolve", "DID_NOT_FOUND"));
        m.on_rpc(&rpc("atp.v1.AdminService/SetTrustAnchors", "AUTH_REQUIRED"));
        let text = m.render().unwrap();
        assert!(text.contains(
            "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Resolve\",\
             grpc_service=\"atp.v1.IdentityService\",grpc_type=\"unary\"} 1"
        ));
        assert!(text.contains("grpc_code=\"NotFound\",grpc_method=\"Resolve\""), "{text}");
        assert!(text.contains("grpc_code=\"Unauthenticated\",grpc_method=\"SetTrustAnchors\""));
        assert!(text.contains(
            "grpc_server_msg_sent_total{grpc_method=\"Resolve\",\
             grpc_service=\"atp.v1.IdentityService\",grpc_type=\"unary\"} 1"
        ));
        assert!(text.contains("atp_build_info{edition=\"enterprise\",version=\"0.0.0-test\"} 1"));
    }

    #[test]
    fn labels_never_hold_unbounded_values() {
        let m = Metrics::new("t").unwrap();
        m.on_rpc(&rpc("GET /1.0/identifiers/did:atp:abc?x=<script>", "404"));
        m.on_rpc(&rpc("GET /1.0/identifiers/{did}", "OK"));
        m.on_domain_event(&DomainEvent::CredentialStatusChanged {
            list_id: "list-secret",
            purpose: "revocation",
            set: 1,
            cleared: 0,
            external: false,
        });
        m.on_domain_event(&DomainEvent::KelEventAccepted {
            did: "did:atp:zSecret",
            sequence: 0,
            log_index: 0,
            event_type: "icp",
        });
        m.on_domain_event(&DomainEvent::SignatureVerified {
            kind: "envelope",
            algorithm: "not a label value",
            ok: false,
        });
        let text = m.render().unwrap();
        assert!(!text.contains("<script>"));
        assert!(!text.contains("list-secret"));
        assert!(!text.contains("zSecret"));
        assert!(text.contains("route=\"other\""));
        assert!(text.contains("route=\"/1.0/identifiers/{did}\",status=\"200\""));
        assert!(text.contains("atp_credentials_total{operation=\"revoked\"} 1"));
        assert!(text.contains("atp_kel_events_total{type=\"icp\"} 1"));
        assert!(text.contains(
            "atp_signature_verifications_total{algorithm=\"other\",kind=\"envelope\",\
             result=\"invalid\"} 1"
        ));
    }

    #[test]
    fn domain_events_fill_their_metrics() {
        let m = Metrics::new("t").unwrap();
        for ok in [true, true, true, false] {
            m.on_domain_event(&DomainEvent::SignatureVerified {
                kind: "envelope",
                algorithm: "mldsa65-ed25519",
                ok,
            });
        }
        m.on_domain_event(&DomainEvent::SignatureVerified {
            kind: "credential",
            algorithm: "eddsa-jcs-2022",
            ok: true,
        });
        // A signed external update: two entries suspended, one reinstated.
        m.on_domain_event(&DomainEvent::CredentialStatusChanged {
            list_id: "ext-suspension-1",
            purpose: "suspension",
            set: 2,
            cleared: 1,
            external: true,
        });
        m.on_domain_event(&DomainEvent::CredentialVerified { kind: "credential", result: "OK" });
        m.on_domain_event(&DomainEvent::CredentialVerified {
            kind: "presentation",
            result: "PRESENTATION_CHALLENGE_REPLAY",
        });
        m.on_domain_event(&DomainEvent::TrustRecomputed {
            elapsed: Duration::from_millis(1500),
            agents_by_level: [5, 4, 3, 2, 1],
        });
        let text = m.render().unwrap();
        for line in [
            "atp_signature_verifications_total{algorithm=\"mldsa65-ed25519\",kind=\"envelope\",\
             result=\"ok\"} 3",
            "atp_signature_verifications_total{algorithm=\"mldsa65-ed25519\",kind=\"envelope\",\
             result=\"invalid\"} 1",
            "atp_signature_verifications_total{algorithm=\"eddsa-jcs-2022\",kind=\"credential\",\
             result=\"ok\"} 1",
            "atp_credentials_total{operation=\"suspended\"} 2",
            "atp_credentials_total{operation=\"reinstated\"} 1",
            "atp_credentials_verified_total{kind=\"credential\",result=\"OK\"} 1",
            "atp_credentials_verified_total{kind=\"presentation\",\
             result=\"PRESENTATION_CHALLENGE_REPLAY\"} 1",
            "atp_trust_recompute_duration_seconds_count 1",
            "atp_trust_recompute_duration_seconds_sum 1.5",
            "atp_trust_recompute_duration_seconds_bucket{le=\"1\"} 0",
            "atp_trust_recompute_duration_seconds_bucket{le=\"2.5\"} 1",
            "atp_trust_agents{level=\"0\"} 5",
            "atp_trust_agents{level=\"4\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
    }

    #[test]
    fn non_loopback_listener_needs_auth() {
        let open = MetricsConfig { listen: "0.0.0.0:9464".parse().unwrap(), require_auth: false };
        assert!(matches!(open.validate(), Err(MetricsError::Config(_))));
        let guarded = MetricsConfig { require_auth: true, ..open };
        assert!(guarded.validate().is_ok());
        assert!(MetricsConfig::default().validate().is_ok());
    }
}
