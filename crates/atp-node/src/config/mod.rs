//! The node's configuration: [`NodeConfig`].
//!
//! Every option has four sources, in this order of precedence:
//!
//! 1. a command-line flag (`--listen 127.0.0.1:7443`);
//! 2. an environment variable (`ATP_LISTEN=127.0.0.1:7443`);
//! 3. the TOML file named by `--config` / `ATP_CONFIG` (`listen = "127.0.0.1:7443"`), if any;
//! 4. the documented default ([`NodeConfig::default`]).
//!
//! [`NodeConfig::load`] takes the arguments and the environment as explicit values, so that it is
//! a pure function of its inputs (tests never touch the process environment);
//! [`NodeConfig::from_process`] feeds it the real ones. The result is validated before it is
//! returned: an `Ok` configuration is one the node can start with.
//!
//! The key-file passphrase is read from `ATP_KEY_PASSPHRASE` only: a flag would show it to every
//! user of `ps`, and a configuration file is the wrong place for a secret.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::NodeError;

pub use atp_server::Limits;
pub use atp_server::limits::{parse_duration, parse_size};

/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./atp-data";
/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7443);
/// Default log filter.
pub const DEFAULT_LOG_FILTER: &str = "info";
/// Default interval between signed checkpoints.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Sections of the configuration file that belong to the enterprise edition.
pub const ENTERPRISE_SECTIONS: &[&str] = &["sso", "rbac", "metrics", "audit", "ha", "console"];

/// The enterprise sections that no build implements yet: asking for one is refused with
/// [`NodeError::EnterpriseFeatureUnavailable`], whatever the build.
pub const UNAVAILABLE_ENTERPRISE_SECTIONS: &[&str] = &["console"];

/// The environment variable that holds the key-file passphrase (never a flag).
pub const KEY_PASSPHRASE_ENV: &str = "ATP_KEY_PASSPHRASE";

/// `ATP_*` variables that are not node options but are used elsewhere in the project; they are
/// not reported as unknown.
const OTHER_ATP_VARS: &[&str] = &[KEY_PASSPHRASE_ENV, "ATP_TEST_VECTORS"];

/// Bounds enforced by validation (the limits carry their own: [`Limits::validate`]).
const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);
const MAX_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(24 * 3600);
const MAX_LOG_ORIGIN_LEN: usize = 255;
const MAX_PUBLIC_URL_LEN: usize = 2048;

/// The complete, validated configuration of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// The configuration file the values came from, if any.
    pub config_file: Option<PathBuf>,
    /// The data directory: key files, admin token, KEL and the store. Default `./atp-data`.
    pub data_dir: PathBuf,
    /// The address gRPC and HTTP listen on. Default `127.0.0.1:7443`.
    pub listen: SocketAddr,
    /// The URL clients reach this node at, recorded as the `#atp-node` service of the node's
    /// DID at its inception. Default: derived from `listen` (see
    /// [`NodeConfig::advertised_endpoint`]).
    pub public_url: Option<String>,
    /// Allow plaintext on a non-loopback address. Default `false`.
    pub insecure_plaintext: bool,
    /// TLS settings.
    pub tls: TlsConfig,
    /// Logging settings.
    pub log: LogConfig,
    /// Request and cache limits.
    pub limits: Limits,
    /// How often a new checkpoint of the transparency log is signed (only when the log grew).
    /// Default 1 s.
    pub checkpoint_interval: Duration,
    /// The origin line of the transparency log's checkpoints. Default: `atp-node/<scid>`,
    /// derived from the node's DID (see [`NodeConfig::effective_log_origin`]).
    pub log_origin: Option<String>,
    /// The passphrase of the key files, from `ATP_KEY_PASSPHRASE` only. `None`: key files are
    /// stored unencrypted (protected by their mode, 0600).
    pub key_passphrase: Option<Passphrase>,
    /// `ATP_*` environment variables that are not options (probably typos). The node logs them
    /// at WARN when it starts.
    pub unknown_env: Vec<String>,
    /// The trust engine (`[trust]` in the file only; docs/trust.md §8).
    pub trust: TrustSettings,
    /// The enterprise sections of the file (`[sso]`, `[rbac]`, `[metrics]`, …), as written.
    /// Only sections of features built into this binary get here (any other one is refused
    /// with [`NodeError::EnterpriseRequired`]); [`crate::build_extensions`] parses them with the
    /// enterprise crate's own configuration type.
    pub enterprise: EnterpriseSections,
    /// The witnesses asked to cosign each checkpoint (`[[witness]]` in the file only;
    /// docs/operations.md "Witnesses"). Default: none.
    pub witnesses: Vec<atp_server::witnesses::WitnessTarget>,
}

/// The raw enterprise sections of the configuration file, by section name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnterpriseSections(pub std::collections::BTreeMap<String, toml::Table>);

// TOML tables may hold floats, so only `PartialEq` derives; a configuration never holds a NaN
// that would break reflexivity.
impl Eq for EnterpriseSections {}

impl EnterpriseSections {
    /// The section `name`, if the file has one.
    pub fn get(&self, name: &str) -> Option<&toml::Table> {
        self.0.get(name)
    }
}

/// The trust engine's settings: the schedule, the proofs' lifetime and every constant of the
/// model (`atp_trust::TrustConfig`, documented in docs/trust.md §8).
#[derive(Clone, Debug, PartialEq)]
pub struct TrustSettings {
    /// How often the node recomputes its trust snapshot. Default 30 s; `0s` schedules no
    /// computation (reads then answer `TRUST_NOT_COMPUTED`). At most 24 h.
    pub recompute_interval: Duration,
    /// The lifetime of the trust proofs GetTrust signs. Default 300 s; 1 s to 24 h.
    pub proof_ttl: Duration,
    /// The model's constants.
    pub model: atp_trust::TrustConfig,
}

// `TrustConfig` holds floats, so only `PartialEq` derives; `validate` refuses NaN (every float
// has a range check that NaN fails), so equality is reflexive on a valid configuration.
impl Eq for TrustSettings {}

impl Default for TrustSettings {
    fn default() -> Self {
        TrustSettings {
            recompute_interval: Duration::from_secs(30),
            proof_ttl: Duration::from_secs(300),
            model: atp_trust::TrustConfig::default(),
        }
    }
}

/// TLS settings. (The server that uses them arrives with the rest of issue 3.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain. Requires [`TlsConfig::key`].
    pub cert: Option<PathBuf>,
    /// PEM private key. Requires [`TlsConfig::cert`].
    pub key: Option<PathBuf>,
    /// Generate a self-signed certificate for local trials.
    pub self_signed: bool,
    /// Accept only the hybrid post-quantum key exchange X25519MLKEM768 (otherwise it is
    /// preferred, and classical X25519 is still accepted).
    pub require_pq: bool,
    /// PEM CA bundle: when set, clients may authenticate with a certificate issued by it
    /// (optional mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether TLS is on (a certificate and key, or a self-signed certificate).
    pub fn enabled(&self) -> bool {
        self.self_signed || self.cert.is_some()
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Logging settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Output format. Default `text`.
    pub format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `info,atp_node=debug`. Default `info`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Text, filter: DEFAULT_LOG_FILTER.to_owned() }
    }
}

impl Default for NodeConfig {
    /// The documented defaults: what `atp-node` with no arguments, no `ATP_*` variables and no
    /// configuration file runs with.
    fn default() -> Self {
        NodeConfig {
            config_file: None,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            listen: DEFAULT_LISTEN,
            public_url: None,
            insecure_plaintext: false,
            tls: TlsConfig::default(),
            log: LogConfig::default(),
            limits: Limits::default(),
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            log_origin: None,
            key_passphrase: None,
            unknown_env: Vec::new(),
            trust: TrustSettings::default(),
            enterprise: EnterpriseSections::default(),
            witnesses: Vec::new(),
        }
    }
}

/// A key-file passphrase. Zeroized on drop; `Debug` prints `<redacted>`.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wrap a passphrase.
    pub fn new(passphrase: String) -> Self {
        Passphrase(Zeroizing::new(passphrase))
    }

    /// The passphrase bytes, for the key-file KDF.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl PartialEq for Passphrase {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
    }
}

impl Eq for Passphrase {}

mod cli;
mod file;
mod load;

impl NodeConfig {
    /// Check ranges and consistency. [`NodeConfig::load`] calls it; call it again after
    /// changing a loaded configuration by hand.
    pub fn validate(&self) -> Result<(), NodeError> {
        let invalid = |option: &str, reason: String| {
            Err(NodeError::InvalidConfig { option: option.to_owned(), reason })
        };
        if self.data_dir.as_os_str().is_empty() {
            return invalid(OPT_DATA_DIR, "must not be empty".into());
        }
        if let Err(e) = self.limits.validate() {
            return invalid(&limit_option(e.key), e.reason);
        }
        if !(MIN_CHECKPOINT_INTERVAL..=MAX_CHECKPOINT_INTERVAL).contains(&self.checkpoint_interval)
        {
            return invalid(
                OPT_CHECKPOINT_INTERVAL,
                format!(
                    "{:?} is out of range: it must be between 100ms and 24h",
                    self.checkpoint_interval
                ),
            );
        }
        let trust = &self.trust;
        if trust.recompute_interval > MAX_CHECKPOINT_INTERVAL {
            return invalid(
                OPT_TRUST_RECOMPUTE_INTERVAL,
                format!("{:?} is out of range: it must be at most 24h", trust.recompute_interval),
            );
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(24 * 3600)).contains(&trust.proof_ttl) {
            return invalid(
                OPT_TRUST_PROOF_TTL,
                format!("{:?} is out of range: it must be between 1s and 24h", trust.proof_ttl),
            );
        }
        if let Err(e) = trust.model.validate() {
            return invalid(OPT_TRUST, e.to_string());
        }
        if let Some(origin) = &self.log_origin {
            check_log_origin(origin).or_else(|r| invalid(OPT_LOG_ORIGIN, r))?;
        }
        if let Some(url) = &self.public_url {
            check_public_url(url).or_else(|r| invalid(OPT_PUBLIC_URL, r))?;
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return invalid(OPT_LOG, format!("{:?} is not a valid filter: {e}", self.log.filter));
        }

        // TLS.
        let tls = &self.tls;
        match (&tls.cert, &tls.key) {
            (Some(_), None) => {
                return invalid(OPT_TLS_CERT, "a certificate needs its key: set --tls-key".into());
            }
            (None, Some(_)) => {
                return invalid(OPT_TLS_KEY, "a key needs its certificate: set --tls-cert".into());
            }
            _ => {}
        }
        if tls.self_signed && tls.cert.is_some() {
            return invalid(
                OPT_TLS_SELF_SIGNED,
                "conflicts with --tls-cert/--tls-key: choose a certificate or a self-signed one"
                    .into(),
            );
        }
        if tls.require_pq && !tls.enabled() {
            return invalid(
                OPT_TLS_REQUIRE_PQ,
                "requires TLS: set --tls-cert/--tls-key or --tls-self-signed".into(),
            );
        }
        if tls.client_ca.is_some() && !tls.enabled() {
            return invalid(
                OPT_TLS_CLIENT_CA,
                "client certificates require TLS: set --tls-cert/--tls-key or --tls-self-signed"
                    .into(),
            );
        }
        for (option, path) in [
            (OPT_TLS_CERT, &tls.cert),
            (OPT_TLS_KEY, &tls.key),
            (OPT_TLS_CLIENT_CA, &tls.client_ca),
        ] {
            if let Some(p) = path.as_ref().filter(|p| !p.is_file()) {
                return invalid(option, format!("{} is not a readable file", p.display()));
            }
        }
        if !tls.enabled() && !self.listen.ip().is_loopback() && !self.insecure_plaintext {
            return Err(NodeError::PlaintextNonLoopback { listen: self.listen });
        }
        Ok(())
    }

    /// The URL recorded as the node's `#atp-node` service when its identity is created:
    /// [`NodeConfig::public_url`] if set, otherwise `http://` (plaintext) or `https://` (TLS)
    /// followed by the listen address. `None` when it cannot be derived: the listen address is
    /// unspecified (`0.0.0.0`, `[::]`) or its port is 0.
    pub fn advertised_endpoint(&self) -> Option<String> {
        if let Some(url) = &self.public_url {
            return Some(url.clone());
        }
        if self.listen.ip().is_unspecified() || self.listen.port() == 0 {
            return None;
        }
        let scheme = if self.tls.enabled() { "https" } else { "http" };
        Some(format!("{scheme}://{}", self.listen))
    }

    /// The checkpoint origin: [`NodeConfig::log_origin`] if set, else `atp-node/<scid>` for the
    /// node's DID `did:atp:<scid>`.
    pub fn effective_log_origin(&self, node_did: &str) -> String {
        match &self.log_origin {
            Some(o) => o.clone(),
            None => default_log_origin(node_did),
        }
    }
}

/// The default checkpoint origin of a node whose DID is `did`: `atp-node/<scid>`.
pub fn default_log_origin(did: &str) -> String {
    let scid = did.strip_prefix(atp_core::kel::DID_ATP_PREFIX).unwrap_or(did);
    format!("atp-node/{scid}")
}

// Every spelling of each option, for error messages.
const OPT_TRUST_RECOMPUTE_INTERVAL: &str = "trust.recompute_interval";
const OPT_TRUST_PROOF_TTL: &str = "trust.proof_ttl";
const OPT_TRUST: &str = "[trust]";
const OPT_DATA_DIR: &str = "--data-dir / ATP_DATA_DIR / data_dir";
const OPT_PUBLIC_URL: &str = "--public-url / ATP_PUBLIC_URL / public_url";
const OPT_TLS_CERT: &str = "--tls-cert / ATP_TLS_CERT / tls.cert";
const OPT_TLS_KEY: &str = "--tls-key / ATP_TLS_KEY / tls.key";
const OPT_TLS_SELF_SIGNED: &str = "--tls-self-signed / ATP_TLS_SELF_SIGNED / tls.self_signed";
const OPT_TLS_REQUIRE_PQ: &str = "--tls-require-pq / ATP_TLS_REQUIRE_PQ / tls.require_pq";
const OPT_TLS_CLIENT_CA: &str = "--tls-client-ca / ATP_TLS_CLIENT_CA / tls.client_ca";
const OPT_LOG: &str = "--log / ATP_LOG / log.filter";
const OPT_CHECKPOINT_INTERVAL: &str =
    "--checkpoint-interval / ATP_CHECKPOINT_INTERVAL / checkpoint_interval";
const OPT_LOG_ORIGIN: &str = "--log-origin / ATP_LOG_ORIGIN / log_origin";

/// Every spelling of the limit `key` ([`atp_server::limits::LimitSpec::key`]).
fn limit_option(key: &str) -> String {
    format!("--{} / ATP_{} / limits.{key}", key.replace('_', "-"), key.to_ascii_uppercase())
}

/// The reason inside a clap error, without clap's decoration.
fn clap_reason(e: &clap::Error) -> String {
    if let Some(source) = std::error::Error::source(e) {
        return source.to_string();
    }
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// A C2SP checkpoint origin: non-empty printable text without surrounding whitespace.
fn check_log_origin(origin: &str) -> Result<(), String> {
    if origin.is_empty() || origin.len() > MAX_LOG_ORIGIN_LEN {
        return Err(format!("must be 1 to {MAX_LOG_ORIGIN_LEN} bytes long"));
    }
    if origin.trim() != origin || origin.chars().any(char::is_control) {
        return Err(format!(
            "{origin:?} must be printable text without control characters or surrounding \
             whitespace"
        ));
    }
    Ok(())
}

/// An `http://` or `https://` URL without whitespace, usable as a DID service endpoint.
fn check_public_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Err(format!("{url:?} must start with http:// or https://"));
    };
    if rest.is_empty()
        || url.len() > MAX_PUBLIC_URL_LEN
        || url.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "{url:?} must be a URL with a host, without whitespace, at most \
             {MAX_PUBLIC_URL_LEN} bytes"
        ));
    }
    Ok(())
}
