//! Logging: a `tracing` subscriber writing text or JSON lines to standard error, filtered by
//! [`LogConfig::filter`] (`--log` / `ATP_LOG`).
//!
//! Standard output is reserved for the few lines the node prints for the operator (its DID and
//! where the admin token is), so that scripts can read them without parsing logs.

use std::io::IsTerminal;
use std::net::SocketAddr;

use tracing_subscriber::EnvFilter;

use crate::NodeError;
use crate::config::{LogConfig, LogFormat};

/// Install the global subscriber. Fails if the filter is invalid or a subscriber is already set.
pub fn init(config: &LogConfig) -> Result<(), NodeError> {
    let filter = EnvFilter::try_new(&config.filter)
        .map_err(|e| NodeError::Telemetry(format!("log filter {:?}: {e}", config.filter)))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
    result.map_err(|e| NodeError::Telemetry(e.to_string()))
}

/// Log, loudly, that the listener at `listen` carries plaintext: one WARN event per line so that
/// it stands out in text logs and is still one field per event in JSON logs.
pub fn plaintext_banner(listen: SocketAddr) {
    const RULE: &str = "********************************************************************";
    tracing::warn!("{RULE}");
    tracing::warn!(%listen, "PLAINTEXT: TLS is OFF for {listen}");
    tracing::warn!("gRPC and HTTP traffic, admin bearer tokens included, is NOT encrypted.");
    tracing::warn!("Acceptable for local trials on a loopback address only. To turn TLS on,");
    tracing::warn!("use --tls-cert/--tls-key, or --tls-self-signed for a local trial.");
    tracing::warn!("{RULE}");
}
