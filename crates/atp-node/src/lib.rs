//! The ATP node: configuration, first-run bootstrap, telemetry and wiring.
//!
//! The binary (`src/main.rs`) is thin: it loads a [`NodeConfig`], installs logging with
//! [`telemetry::init`] and calls [`run`]. Everything else lives here, so that tests drive the
//! same code:
//!
//! - [`config`]: [`NodeConfig`] from flags, `ATP_*` environment variables, an optional TOML file
//!   and documented defaults, in that order of precedence, validated before use.
//! - [`mod@bootstrap`]: the data directory, the node's `did:atp` identity (composite ML-DSA-65 +
//!   Ed25519 key, pre-rotation next key, KEL) and the admin token ([`admin`]), created on the
//!   first run and verified on every later one.
//! - [`telemetry`]: `tracing` output as text or JSON.
//!
//! Library modules return [`NodeError`]; only [`run`] (the binary's body) uses `anyhow`.
//!
//! [`run`] bootstraps, opens the SQLite store in the data directory, makes sure the node's own
//! key event log is in it, starts the checkpointer and serves gRPC and HTTP (`atp-server`) on
//! the listen address until SIGINT or SIGTERM. The extension seam is built in one place,
//! [`build_extensions`]. With `--tls-cert/--tls-key` or `--tls-self-signed` it serves TLS
//! ([`tls_settings`], `atp_server::tls`): X25519MLKEM768 preferred (required with
//! `tls.require_pq`), optional client certificates.
#![forbid(unsafe_code)]

pub mod admin;
pub mod bootstrap;
pub mod config;
mod error;
mod fsutil;
pub mod telemetry;

use std::future::Future;
use std::io::Write;
use std::sync::Arc;

use anyhow::Context as _;

pub use admin::AdminToken;
pub use bootstrap::{Bootstrapped, NodeIdentity, bootstrap};
pub use config::NodeConfig;
pub use error::NodeError;

/// Why the node stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// The embedding program asked for it (tests, or a supervisor in the same process).
    Requested,
}

impl std::fmt::Display for ShutdownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShutdownReason::Interrupt => "SIGINT",
            ShutdownReason::Terminate => "SIGTERM",
            ShutdownReason::Requested => "shutdown request",
        })
    }
}

/// The shutdown signals (SIGINT and SIGTERM), registered when this value is created, so that a
/// signal that arrives before [`ShutdownSignals::recv`] is polled is not lost (and does not kill
/// the process with the default action).
#[derive(Debug)]
pub struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Register the handlers. Must be called inside a Tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(ShutdownSignals {})
        }
    }

    /// Wait for the first of SIGINT and SIGTERM.
    pub async fn recv(mut self) -> ShutdownReason {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => ShutdownReason::Interrupt,
                _ = self.terminate.recv() => ShutdownReason::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
            ShutdownReason::Interrupt
        }
    }
}

/// Run the node until SIGINT or SIGTERM: bootstrap, announce, (serve), shut down gracefully.
pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    // Before anything is announced: a supervisor that reads the DID and then sends SIGTERM must
    // get a graceful shutdown.
    let signals = ShutdownSignals::install()?;
    run_until(config, signals.recv()).await
}

/// The enterprise features built into this binary (`sso`, `rbac`, `metrics`, …): the
/// configuration sections of [`config::ENTERPRISE_SECTIONS`] that it accepts. Empty in the
/// community build. Read from [`enterprise_edition`], the only code that names the edition's
/// Cargo features.
pub fn enterprise_features() -> Vec<&'static str> {
    enterprise_edition().iter().map(|feature| feature.name).collect()
}

/// What an enterprise feature's builder gets: its configuration section and the composition so
/// far, which it changes.
#[allow(dead_code)] // read only by the builders of enterprise features, none in the community build
struct FeatureContext<'a> {
    section: &'a toml::Table,
    data_dir: &'a std::path::Path,
    admin_token: &'a Arc<AdminToken>,
    store: &'a Arc<dyn atp_store::Store>,
    extensions: &'a mut atp_server::Extensions,
    admin_services: &'a mut Vec<AdminServiceStarter>,
}

/// Adds one enterprise feature to the composition.
type FeatureBuilder =
    for<'a> fn(
        FeatureContext<'a>,
    ) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

/// The node's store, and whether other nodes share it.
pub struct NodeStore {
    /// The store.
    pub store: Arc<dyn atp_store::Store>,
    /// Set when the store is shared by the nodes of a cluster.
    pub cluster: Option<ClusterSettings>,
}

/// How a node takes part in a cluster whose nodes share its store.
pub struct ClusterSettings {
    /// The checkpoint signer's lease TTL.
    pub lease_ttl: std::time::Duration,
    /// How long the node serves, NOT_SERVING, after its shutdown began.
    pub drain_grace: std::time::Duration,
    /// How the node's cached key event logs follow the other nodes' appends.
    pub kel_coherence: atp_server::KelCoherence,
}

/// The future a [`StoreOpener`] returns.
type OpeningStore<'a> =
    std::pin::Pin<Box<dyn Future<Output = anyhow::Result<NodeStore>> + Send + 'a>>;

/// Opens the node's store from an enterprise feature's configuration section, in place of the
/// embedded SQLite store.
type StoreOpener = for<'a> fn(&'a toml::Table) -> OpeningStore<'a>;

/// One enterprise feature built into this binary.
struct EnterpriseFeature {
    /// The feature's name, which is also its configuration section.
    name: &'static str,
    /// Called by [`build_extensions`] when the configuration has the section.
    build: FeatureBuilder,
    /// Called by [`open_store`] when the configuration has the section: the feature provides
    /// the store.
    open_store: Option<StoreOpener>,
}

/// The enterprise features of this build, in the order they compose: SSO sets the
/// authenticator (and a group authorizer), RBAC replaces the authorizer, and metrics come last so
/// that an authenticated scrape goes through both.
///
/// This is the only function where the edition's `cfg(feature = …)`s appear (a tidy test holds
/// it to that): each feature's builder is defined inside it, and the community build gets an
/// empty table.
fn enterprise_edition() -> &'static [EnterpriseFeature] {
    #[cfg(feature = "sso")]
    fn sso(
        cx: FeatureContext<'_>,
    ) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>> {
        Box::pin(async move {
            use atp_enterprise_sso as sso;
            let settings: sso::SsoConfig = toml::Value::Table(cx.section.clone())
                .try_into()
                .context("invalid [sso] section")?;
            let validator = Arc::new(sso::OidcValidator::discover(settings.clone()).await?);
            let token = cx.admin_token.clone();
            cx.extensions.authenticator =
                Arc::new(sso::OidcAuthenticator::new(validator, move |presented: &str| {
                    token.verify(presented)
                }));
            // Without [rbac], the admin groups may do everything and nobody else anything.
            cx.extensions.authorizer = Arc::new(sso::GroupAuthorizer::new(settings.admin_groups));
            tracing::info!(issuer = %settings.issuer, audience = %settings.audience, "OIDC SSO on");
            Ok(())
        })
    }

    #[cfg(feature = "rbac")]
    fn rbac(
        cx: FeatureContext<'_>,
    ) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>> {
        Box::pin(async move {
            use atp_enterprise_rbac as rbac;
            let settings: rbac::RbacConfig = toml::Value::Table(cx.section.clone())
                .try_into()
                .context("invalid [rbac] section")?;
            // The store holds the policy; [rbac] bindings seed a store that never had one.
            let authorizer = rbac::RbacAuthorizer::open(cx.store.clone(), &settings).await?;
            tracing::info!(revision = authorizer.loaded_revision(), "RBAC on");
            cx.extensions.authorizer = Arc::new(authorizer);
            Ok(())
        })
    }

    #[cfg(feature = "metrics")]
    fn metrics(
        cx: FeatureContext<'_>,
    ) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>> {
        Box::pin(async move {
            use atp_enterprise_metrics as m;
            let settings: m::MetricsConfig = toml::Value::Table(cx.section.clone())
                .try_into()
                .context("invalid [metrics] section")?;
            settings.validate()?;
            let metrics = Arc::new(m::Metrics::new(env!("CARGO_PKG_VERSION"))?);
            cx.extensions.observer =
                Arc::new(m::FanOutObserver(vec![cx.extensions.observer.clone(), metrics.clone()]));
            let listener =
                tokio::net::TcpListener::bind(settings.listen).await.with_context(|| {
                    format!("cannot listen on {} ([metrics] listen)", settings.listen)
                })?;
            let bound = listener.local_addr().context("reading the metrics address")?;
            let auth = settings.require_auth.then(|| cx.extensions.clone());
            tracing::info!(listen = %bound, require_auth = settings.require_auth, "serving /metrics");
            {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "metrics: http://{bound}/metrics");
                let _ = out.flush();
            }
            cx.admin_services.push(Box::new(move |store, shutdown| {
                tokio::spawn(async move {
                    m::serve(listener, metrics, Some(store), auth, shutdown).await?;
                    Ok(())
                })
            }));
            Ok(())
        })
    }

    #[cfg(feature = "audit")]
    fn audit(
        cx: FeatureContext<'_>,
    ) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>> {
        Box::pin(async move {
            use atp_enterprise_audit as audit;
            let settings: audit::AuditConfig = toml::Value::Table(cx.section.clone())
                .try_into()
                .context("invalid [audit] section")?;
            settings.validate()?;
            let path = settings.key_file.clone().unwrap_or_else(|| cx.data_dir.join("audit.key"));
            let key =
                fsutil::load_or_create_key(&path, audit::AUDIT_KEY_BYTES, "[audit] key_file")?;
            let hasher = audit::KeyedHasher::new(&key)?;
            // Every node that shares the store must hash with the same key: the first claims it.
            let check = hasher.key_check();
            let claimed = cx.store.claim_meta("audit.key_check".into(), check.clone()).await?;
            if claimed != check {
                anyhow::bail!(
                    "[audit] {} is not the audit key this store was written with: copy the key \
                     file of the other nodes (every node of a cluster needs the same audit key)",
                    path.display()
                );
            }
            cx.extensions.audit = Arc::new(
                audit::StoredAuditSink::new(hasher, settings.seal_interval())
                    .with_retention(settings.retention()),
            );
            tracing::info!(key_file = %path.display(), "audit trail on");
            Ok(())
        })
    }

    #[cfg(feature = "ha")]
    fn ha_store(section: &toml::Table) -> OpeningStore<'_> {
        Box::pin(async move {
            use atp_enterprise_ha as ha;
            let settings: ha::HaConfig =
                toml::Value::Table(section.clone()).try_into().context("invalid [ha] section")?;
            let store = settings.connect().await?;
            let cluster = ClusterSettings {
                lease_ttl: settings.lease_ttl(),
                drain_grace: settings.drain_grace(),
                kel_coherence: match settings.kel_cache_max_staleness() {
                    Some(max_staleness) => atp_server::KelCoherence::ChangeFeed { max_staleness },
                    None => atp_server::KelCoherence::HeadCheck,
                },
            };
            Ok(NodeStore { store: Arc::new(store), cluster: Some(cluster) })
        })
    }

    /// Nothing to add to the extensions: [ha] provides the store ([`open_store`]).
    #[cfg(feature = "ha")]
    fn ha(
        _cx: FeatureContext<'_>,
    ) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>> {
        Box::pin(async { Ok(()) })
    }

    const FEATURES: &[EnterpriseFeature] = &[
        #[cfg(feature = "ha")]
        EnterpriseFeature { name: "ha", build: ha, open_store: Some(ha_store) },
        #[cfg(feature = "sso")]
        EnterpriseFeature { name: "sso", build: sso, open_store: None },
        #[cfg(feature = "rbac")]
        EnterpriseFeature { name: "rbac", build: rbac, open_store: None },
        #[cfg(feature = "metrics")]
        EnterpriseFeature { name: "metrics", build: metrics, open_store: None },
        #[cfg(feature = "audit")]
        EnterpriseFeature { name: "audit", build: audit, open_store: None },
    ];
    FEATURES
}

/// The extension seam of this build and the admin services it adds.
pub struct Composition {
    /// Who is calling, who may do what, metrics and audit.
    pub extensions: atp_server::Extensions,
    /// Listeners of the enterprise edition (the `/metrics` admin listener), started by
    /// [`Composition::spawn_admin_services`].
    admin_services: Vec<AdminServiceStarter>,
}

/// Starts one admin service given the store and a shutdown future.
type AdminServiceStarter = Box<
    dyn FnOnce(
            Arc<dyn atp_store::Store>,
            std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
        ) -> tokio::task::JoinHandle<anyhow::Result<()>>
        + Send,
>;

impl std::fmt::Debug for Composition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Composition")
            .field("extensions", &self.extensions)
            .field("admin_services", &self.admin_services.len())
            .finish()
    }
}

impl Composition {
    /// Starts the admin services; each stops when `stop` turns `true`.
    pub fn spawn_admin_services(
        &mut self,
        store: &Arc<dyn atp_store::Store>,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<anyhow::Result<()>>> {
        self.admin_services
            .drain(..)
            .map(|start| {
                let mut rx = stop.clone();
                start(
                    store.clone(),
                    Box::pin(async move {
                        let _ = rx.wait_for(|stop| *stop).await;
                    }),
                )
            })
            .collect()
    }
}

/// The extension seam of this build: who is calling, who may do what, metrics and audit, and
/// the admin listeners of the enterprise edition (bound here, so that a port in use stops the
/// start).
///
/// The enterprise features come from [`enterprise_edition`], the only code that names the
/// edition's Cargo features; the community build uses the Apache-2.0 implementations of
/// `atp-server` with the admin token.
pub async fn build_extensions(
    config: &NodeConfig,
    admin_token: AdminToken,
    store: &Arc<dyn atp_store::Store>,
    data_dir: &std::path::Path,
) -> anyhow::Result<Composition> {
    let admin_token = Arc::new(admin_token);
    let community_token = admin_token.clone();
    let mut extensions =
        atp_server::Extensions::community(move |presented: &str| community_token.verify(presented));
    let mut admin_services: Vec<AdminServiceStarter> = Vec::new();
    for feature in enterprise_edition() {
        let Some(section) = config.enterprise.get(feature.name) else { continue };
        (feature.build)(FeatureContext {
            section,
            data_dir,
            admin_token: &admin_token,
            store,
            extensions: &mut extensions,
            admin_services: &mut admin_services,
        })
        .await?;
    }
    Ok(Composition { extensions, admin_services })
}

/// The node's store: the one an enterprise feature provides when its section is configured
/// (`[ha]`: PostgreSQL), else the embedded SQLite store in the data directory.
pub async fn open_store(
    config: &NodeConfig,
    data_dir: &std::path::Path,
) -> anyhow::Result<NodeStore> {
    for feature in enterprise_edition() {
        let (Some(open), Some(section)) = (feature.open_store, config.enterprise.get(feature.name))
        else {
            continue;
        };
        return open(section)
            .await
            .with_context(|| format!("opening the [{}] store", feature.name));
    }
    let store = atp_store::SqliteStore::open(data_dir)
        .await
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    Ok(NodeStore { store: Arc::new(store), cluster: None })
}

/// The metadata keys under which the nodes of a cluster agree on the one log identity.
const CLUSTER_DID_KEY: &str = "cluster.node_did";
const CLUSTER_ORIGIN_KEY: &str = "cluster.log_origin";

/// Joins the cluster whose nodes share `store`: the first node to start claims the store for
/// its identity and log origin, and every later node must have the same, so that the cluster
/// signs one log under one key (docs/ha.md: every node gets the same identity files).
async fn join_cluster(
    store: &dyn atp_store::Store,
    node_did: &str,
    log_origin: &str,
    data_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let did = store.claim_meta(CLUSTER_DID_KEY.into(), node_did.into()).await?;
    if did != node_did {
        anyhow::bail!(
            "this database belongs to the cluster with identity {did}, and this node's is \
             {node_did}: every node of a cluster signs the one log with one key. Copy {}, {} \
             and {} from a node of that cluster into {} (and give this node its passphrase)",
            bootstrap::KEY_FILE,
            bootstrap::NEXT_KEY_FILE,
            bootstrap::KEL_FILE,
            data_dir.display()
        );
    }
    let origin = store.claim_meta(CLUSTER_ORIGIN_KEY.into(), log_origin.into()).await?;
    if origin != log_origin {
        anyhow::bail!(
            "this database's log origin is {origin:?} and this node's is {log_origin:?}: give \
             every node of the cluster the same log_origin"
        );
    }
    Ok(())
}

/// This process's name as a lease holder: host, process id and a random suffix, so that it is
/// unique among the processes of a cluster even after a restart with the same pid.
fn lease_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().chars().filter(|c| c.is_ascii_graphic()).take(64).collect::<String>())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let mut nonce = [0u8; 6];
    let suffix = match atp_crypto::random_bytes(&mut nonce) {
        Ok(()) => nonce.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        Err(_) => format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ),
    };
    format!("{host}/{}/{suffix}", std::process::id())
}

/// The server's settings from the node's configuration.
fn server_settings(config: &NodeConfig) -> atp_server::ServerSettings {
    atp_server::ServerSettings {
        limits: config.limits.clone(),
        checkpoint_interval: config.checkpoint_interval,
        trust_recompute_interval: config.trust.recompute_interval,
        trust_proof_ttl_secs: i64::try_from(config.trust.proof_ttl.as_secs()).unwrap_or(i64::MAX),
        witnesses: config.witnesses.clone(),
        ..atp_server::ServerSettings::default()
    }
}

/// The file name, in the data directory, of the certificate `--tls-self-signed` makes on each
/// start (public; clients may trust it for a local trial).
pub const SELF_SIGNED_CERT_FILE: &str = "tls-self-signed-cert.pem";

/// Reads the TLS files of `config` (or, with `--tls-self-signed`, makes a certificate for
/// `localhost`, 127.0.0.1, ::1 and the listen address, kept in memory with its key). The second
/// value is the self-signed certificate's PEM, for [`SELF_SIGNED_CERT_FILE`].
pub fn tls_settings(
    config: &NodeConfig,
) -> anyhow::Result<(atp_server::tls::TlsSettings, Option<String>)> {
    let tls = &config.tls;
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
    };
    let (cert_chain_pem, key_pem, self_signed) = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            (read(cert, "the TLS certificate")?, read(key, "the TLS private key")?, None)
        }
        _ => {
            let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
            let ip = config.listen.ip();
            if !ip.is_unspecified() && !ip.is_loopback() {
                names.push(ip.to_string());
            }
            let cert = rcgen::generate_simple_self_signed(names)
                .context("making the self-signed TLS certificate")?;
            let cert_pem = cert.cert.pem();
            let key_pem = cert.signing_key.serialize_pem().into_bytes();
            (cert_pem.clone().into_bytes(), key_pem, Some(cert_pem))
        }
    };
    let client_ca_pem = match &tls.client_ca {
        Some(path) => Some(read(path, "the TLS client CA")?),
        None => None,
    };
    let settings = atp_server::tls::TlsSettings {
        cert_chain_pem,
        key_pem,
        client_ca_pem,
        require_pq: tls.require_pq,
    };
    Ok((settings, self_signed))
}

/// Run the node until `shutdown` completes. [`run`] passes the signal handlers; tests and
/// embedders may pass any future.
pub async fn run_until<F>(config: NodeConfig, shutdown: F) -> anyhow::Result<()>
where
    F: Future<Output = ShutdownReason>,
{
    // TLS files are checked before the data directory is touched.
    let tls = if config.tls.enabled() {
        let (settings, self_signed_pem) = tls_settings(&config)?;
        let server_config = atp_server::tls::server_config(&settings)
            .context("configuring TLS (--tls-cert / --tls-key / --tls-client-ca)")?;
        Some((settings, self_signed_pem, server_config))
    } else {
        None
    };
    for var in &config.unknown_env {
        tracing::warn!(variable = %var, "ignoring an unknown ATP_* environment variable");
    }
    if let Some(path) = &config.config_file {
        tracing::info!(path = %path.display(), "configuration file loaded");
    }

    // Blocking file I/O and, with a passphrase, Argon2id: acceptable here, before anything
    // else runs on the runtime.
    let node = bootstrap(&config)?;
    let identity = &node.identity;
    if node.created_data_dir {
        tracing::info!(path = %node.data_dir.display(), "data directory created (mode 0700)");
    }
    tracing::info!(
        did = %identity.did(),
        created = identity.created(),
        encrypted_keys = config.key_passphrase.is_some(),
        "node identity {}",
        if identity.created() { "created" } else { "loaded and verified" }
    );
    let configured = config.advertised_endpoint();
    if !identity.created() && configured.as_deref() != identity.advertised_endpoint() {
        tracing::warn!(
            recorded = identity.advertised_endpoint().unwrap_or("<none>"),
            configured = configured.as_deref().unwrap_or("<none>"),
            "the node's DID document advertises another endpoint than the configuration; \
             updating it needs a key rotation of the node identity"
        );
    } else if identity.created() && configured.is_none() {
        tracing::warn!(
            listen = %config.listen,
            "no endpoint recorded in the node's DID document: the listen address is \
             unspecified or has port 0; set --public-url before the first start to record one"
        );
    }
    let token_path = node.admin_token.path();
    let token_display = std::fs::canonicalize(token_path).unwrap_or_else(|_| token_path.into());
    tracing::info!(
        path = %token_display.display(),
        created = node.admin_token.created(),
        "admin token {}",
        if node.admin_token.created() { "created" } else { "loaded" }
    );
    tracing::info!(origin = %config.effective_log_origin(identity.did()), "transparency log");

    // For the operator and for scripts: the DID and where the token is. Never the token itself.
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "node DID: {}", identity.did());
        let _ = writeln!(out, "admin token: {}", token_display.display());
        let _ = out.flush();
    }

    if let Some(pem) = tls.as_ref().and_then(|(_, pem, _)| pem.as_ref()) {
        let path = node.data_dir.join(SELF_SIGNED_CERT_FILE);
        std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
        tracing::warn!(
            certificate = %path.display(),
            "TLS with a self-signed certificate made for this run: for local trials only"
        );
    }
    if let Some((settings, _, _)) = &tls {
        tracing::info!(
            self_signed = config.tls.self_signed,
            key_exchange = if settings.require_pq {
                "X25519MLKEM768 only (post-quantum required)"
            } else {
                "X25519MLKEM768 preferred, then X25519, secp256r1"
            },
            client_certificates = if settings.client_ca_pem.is_some() { "required" } else { "no" },
            "TLS enabled"
        );
    } else {
        telemetry::plaintext_banner(config.listen);
    }

    // ---- Store, server state, server -----------------------------------------------------
    let NodeStore { store, cluster } = open_store(&config, &node.data_dir).await?;
    let node_did = identity.did().to_owned();
    let log_origin = config.effective_log_origin(&node_did);
    let mut settings = server_settings(&config);
    if let Some(cluster) = cluster {
        // The signer renews its lease every checkpoint round: a lease shorter than two rounds
        // would lapse between renewals.
        if cluster.lease_ttl < config.checkpoint_interval.saturating_mul(2) {
            anyhow::bail!(
                "[ha] lease_ttl_ms ({} ms) must be at least twice the checkpoint interval ({} ms)",
                cluster.lease_ttl.as_millis(),
                config.checkpoint_interval.as_millis()
            );
        }
        join_cluster(&*store, &node_did, &log_origin, &node.data_dir).await?;
        // Other nodes append to the same logs: a cached log follows their appends.
        settings.kel_coherence = cluster.kel_coherence;
        settings.singleton_lease =
            Some(atp_server::SingletonLease { holder: lease_holder(), ttl: cluster.lease_ttl });
        settings.drain_grace = cluster.drain_grace;
        // A one-time value used on another node is a replay here too.
        settings.replay_through_store = true;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let public_base_url =
        config.public_url.clone().or_else(|| config.advertised_endpoint()).unwrap_or_else(|| {
            format!("{}://{bound}", if config.tls.enabled() { "https" } else { "http" })
        });
    let crate::Bootstrapped { identity, admin_token, data_dir, .. } = node;
    let (kel, key) = identity.into_kel_and_key();
    let mut composition = build_extensions(&config, admin_token, &store, &data_dir).await?;
    let extensions = composition.extensions.clone();
    let mut node_state = atp_server::NodeState::new(
        store.clone(),
        Arc::new(key),
        node_did,
        log_origin,
        public_base_url,
        settings,
        extensions,
    );
    node_state.trust = atp_server::trust::TrustState::new(config.trust.model.clone());
    let state: atp_server::AppState = Arc::new(node_state);
    let added = atp_server::serve::ensure_kel(&state, &kel)
        .await
        .context("storing the node's key event log")?;
    if added > 0 {
        tracing::info!(events = added, "node key event log stored");
    }
    atp_server::checkpointer::sign_now(&state).await.context("signing the first checkpoint")?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let checkpointer =
        tokio::spawn(atp_server::checkpointer::run(state.clone(), stopped(stop_rx.clone())));
    let admin_services = composition.spawn_admin_services(&store, &stop_rx);
    let mut server = match tls.map(|(_, _, server_config)| server_config) {
        Some(tls) => tokio::spawn(atp_server::serve::serve_tls_with_incoming_shutdown(
            state.clone(),
            listener,
            tls,
            stopped(stop_rx),
        )),
        None => tokio::spawn(atp_server::serve::serve_with_incoming_shutdown(
            state.clone(),
            listener,
            stopped(stop_rx),
        )),
    };
    tracing::info!(listen = %bound, "serving gRPC and HTTP");
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening: {bound}");
        let _ = out.flush();
    }
    // --------------------------------------------------------------------------------------

    let early = tokio::select! {
        reason = shutdown => {
            tracing::info!(%reason, "shutdown requested; stopping");
            None
        }
        result = &mut server => Some(result),
    };
    let _ = stop_tx.send(true);
    let served = match early {
        Some(r) => r,
        None => server.await,
    };
    let _ = checkpointer.await;
    if let Err(e) = atp_server::trust_job::release(&state).await {
        tracing::warn!(error = %e, "releasing the trust lease failed");
    }
    for service in admin_services {
        match service.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "an admin listener failed"),
            Err(e) => tracing::warn!(error = %e, "an admin listener task failed"),
        }
    }
    store.close().await.context("closing the store")?;
    match served {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(anyhow::Error::new(e).context("the server stopped")),
        Err(e) => return Err(anyhow::Error::new(e).context("the server task failed")),
    }
    tracing::info!("shutdown complete");
    Ok(())
}
