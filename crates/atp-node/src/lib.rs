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
//! **Status:** the gRPC/HTTP server (`atp-server`) is not part of this build yet. [`run`]
//! bootstraps, says so at WARN, and waits for SIGINT or SIGTERM; it never claims to serve.
#![forbid(unsafe_code)]

pub mod admin;
pub mod bootstrap;
pub mod config;
mod error;
mod fsutil;
pub mod telemetry;

use std::future::Future;
use std::io::Write;

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

/// Run the node until `shutdown` completes. [`run`] passes the signal handlers; tests and
/// embedders may pass any future.
pub async fn run_until<F>(config: NodeConfig, shutdown: F) -> anyhow::Result<()>
where
    F: Future<Output = ShutdownReason>,
{
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

    if !config.tls.enabled() {
        telemetry::plaintext_banner(config.listen);
    }

    // ---- Server placeholder --------------------------------------------------------------
    // `atp-server` plugs in here: build the store in `node.data_dir`, the `Extensions` (the
    // community authorizer gets `node.admin_token`), the services and the TLS acceptor from
    // `config`, bind `config.listen`, and serve with `shutdown` as the graceful-shutdown
    // signal. Until then nothing listens, and the node must not pretend otherwise.
    tracing::warn!(
        listen = %config.listen,
        "gRPC server not yet available in this build: nothing is listening"
    );
    // --------------------------------------------------------------------------------------

    let reason = shutdown.await;
    tracing::info!(%reason, "shutdown requested; stopping");
    // The server's graceful shutdown (drain in-flight requests, flush the store) goes here.
    drop(node);
    tracing::info!("shutdown complete");
    Ok(())
}
