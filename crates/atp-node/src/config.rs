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

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::NodeError;

/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./atp-data";
/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7443);
/// Default log filter.
pub const DEFAULT_LOG_FILTER: &str = "info";
/// Default largest gRPC message, in bytes (4 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Default largest page a list call may ask for.
pub const DEFAULT_MAX_PAGE_SIZE: u32 = 1000;
/// Default page size when a list call asks for none.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Default deadline of a request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default per-peer rate limit, in requests per second.
pub const DEFAULT_RATE_LIMIT: u32 = 500;
/// Default per-peer burst, in requests.
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 1000;
/// Default capacity of the envelope replay cache, in entries.
pub const DEFAULT_REPLAY_CACHE_CAPACITY: usize = 100_000;
/// Default capacity of the DID resolution cache, in entries.
pub const DEFAULT_RESOLUTION_CACHE_CAPACITY: usize = 10_000;
/// Default clock skew tolerated on envelope times.
pub const DEFAULT_ENVELOPE_MAX_SKEW: Duration = Duration::from_secs(60);
/// Default longest envelope validity window.
pub const DEFAULT_ENVELOPE_MAX_LIFETIME: Duration = Duration::from_secs(300);
/// Default interval between signed checkpoints.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Sections of the configuration file that belong to the enterprise edition.
pub const ENTERPRISE_SECTIONS: &[&str] = &["sso", "rbac", "metrics", "audit", "ha", "console"];

/// The enterprise sections that no build implements yet: asking for one is refused with
/// [`NodeError::EnterpriseFeatureUnavailable`], whatever the build.
pub const UNAVAILABLE_ENTERPRISE_SECTIONS: &[&str] = &["audit", "ha", "console"];

/// The environment variable that holds the key-file passphrase (never a flag).
pub const KEY_PASSPHRASE_ENV: &str = "ATP_KEY_PASSPHRASE";

/// `ATP_*` variables that are not node options but are used elsewhere in the project; they are
/// not reported as unknown.
const OTHER_ATP_VARS: &[&str] = &[KEY_PASSPHRASE_ENV, "ATP_TEST_VECTORS"];

/// Bounds enforced by validation.
const MIN_MAX_MESSAGE_BYTES: usize = 64 * 1024;
const MAX_MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
const MAX_PAGE_SIZE_LIMIT: u32 = 100_000;
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);
const MAX_ENVELOPE_MAX_SKEW: Duration = Duration::from_secs(3600);
const MAX_ENVELOPE_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
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

/// Request and cache limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest gRPC message (request or response), in bytes. Default 4 MiB.
    pub max_message_bytes: usize,
    /// Largest page a list call may ask for. Default 1000.
    pub max_page_size: u32,
    /// Page size of a list call that asks for none. Default 100.
    pub default_page_size: u32,
    /// Deadline of every request. Default 10 s.
    pub request_timeout: Duration,
    /// Requests per second allowed per peer (client IP address); beyond it the node answers
    /// `RESOURCE_EXHAUSTED`. `0` turns the limit off. Default 500.
    pub rate_limit_per_second: u32,
    /// Requests a peer may send at once above its rate. Default 1000.
    pub rate_limit_burst: u32,
    /// Capacity of the envelope replay cache, in entries. Default 100 000.
    pub replay_cache_capacity: usize,
    /// Capacity of the DID resolution cache, in entries. Default 10 000.
    pub resolution_cache_capacity: usize,
    /// Clock skew tolerated on envelope times. Default 60 s.
    pub envelope_max_skew: Duration,
    /// Longest validity window an envelope may claim. Default 300 s.
    pub envelope_max_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_page_size: DEFAULT_MAX_PAGE_SIZE,
            default_page_size: DEFAULT_PAGE_SIZE,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            rate_limit_per_second: DEFAULT_RATE_LIMIT,
            rate_limit_burst: DEFAULT_RATE_LIMIT_BURST,
            replay_cache_capacity: DEFAULT_REPLAY_CACHE_CAPACITY,
            resolution_cache_capacity: DEFAULT_RESOLUTION_CACHE_CAPACITY,
            envelope_max_skew: DEFAULT_ENVELOPE_MAX_SKEW,
            envelope_max_lifetime: DEFAULT_ENVELOPE_MAX_LIFETIME,
        }
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

// ---------------------------------------------------------------------------------------------
// Command line (and, through clap's `env`, the documentation of the environment variables)
// ---------------------------------------------------------------------------------------------

const LONG_ABOUT: &str = "\
The ATP node: a registry of did:atp key event logs, a credential status service and a \
transparency log, behind a gRPC API with HTTP routes on the same port.

With no arguments it keeps its data in ./atp-data (created on first run, mode 0700, with a new \
node identity and an admin token) and listens on 127.0.0.1:7443 in plaintext.

Every option can be given as a flag, as an ATP_* environment variable, or in the TOML file named \
by --config; flags override environment variables, which override the file, which overrides the \
defaults. Durations take a unit (500ms, 10s, 5m, 1h); sizes are bytes or take KiB, MiB or GiB. \
Boolean flags accept an optional value (--insecure-plaintext=false).

The key files' passphrase, if any, is read from ATP_KEY_PASSPHRASE only (never a flag, so that \
it does not show in ps). See docs/operations.md.";

/// Flags; each one also reads its `ATP_*` variable. Every field is optional, so that an option
/// that is not given falls through to the file and then to the default.
#[derive(Parser, Debug)]
#[command(name = "atp-node", version, about = "The ATP node", long_about = LONG_ABOUT)]
struct Cli {
    /// TOML configuration file (optional; it must exist if given). Relative paths inside it are
    /// resolved against the file's directory. Unknown keys are errors.
    #[arg(long, env = "ATP_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    /// Data directory: node keys, node KEL, admin token and the store. Created with mode 0700
    /// on first run. [default: ./atp-data] [toml: data_dir]
    #[arg(long, env = "ATP_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Address (IP:port) that gRPC and HTTP listen on. [default: 127.0.0.1:7443] [toml: listen]
    #[arg(long, env = "ATP_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// URL clients reach this node at (http:// or https://), recorded as the #atp-node service
    /// of the node's DID when the identity is created. [default: derived from --listen; none
    /// if it is 0.0.0.0, [::] or port 0] [toml: public_url]
    #[arg(long, env = "ATP_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,

    /// Allow plaintext (no TLS) on a non-loopback listen address, e.g. behind a
    /// TLS-terminating proxy. Without it the node refuses to start in that case.
    /// [default: false] [toml: insecure_plaintext]
    #[arg(long, env = "ATP_INSECURE_PLAINTEXT", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    insecure_plaintext: Option<bool>,

    /// PEM certificate chain; turns TLS on. Requires --tls-key. [toml: tls.cert]
    #[arg(long, env = "ATP_TLS_CERT", value_name = "PATH", help_heading = "TLS")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert. [toml: tls.key]
    #[arg(long, env = "ATP_TLS_KEY", value_name = "PATH", help_heading = "TLS")]
    tls_key: Option<PathBuf>,

    /// Turn TLS on with a generated self-signed certificate, for local trials.
    /// [default: false] [toml: tls.self_signed]
    #[arg(long, env = "ATP_TLS_SELF_SIGNED", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true",
          value_parser = BoolishValueParser::new(), help_heading = "TLS")]
    tls_self_signed: Option<bool>,

    /// Accept only the post-quantum hybrid key exchange X25519MLKEM768 (by default it is
    /// preferred and X25519 is still accepted). Requires TLS. [default: false]
    /// [toml: tls.require_pq]
    #[arg(long, env = "ATP_TLS_REQUIRE_PQ", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true",
          value_parser = BoolishValueParser::new(), help_heading = "TLS")]
    tls_require_pq: Option<bool>,

    /// PEM CA bundle for mutual TLS: when set, clients must present a certificate issued by
    /// one of these CAs. Requires TLS. [toml: tls.client_ca]
    #[arg(long, env = "ATP_TLS_CLIENT_CA", value_name = "PATH", help_heading = "TLS")]
    tls_client_ca: Option<PathBuf>,

    /// Log format. [default: text] [toml: log.format]
    #[arg(long, env = "ATP_LOG_FORMAT", value_name = "FORMAT", help_heading = "Logging")]
    log_format: Option<LogFormat>,

    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `warn,atp_node=debug`.
    /// [default: info] [toml: log.filter]
    #[arg(long = "log", env = "ATP_LOG", value_name = "FILTER", help_heading = "Logging")]
    log_filter: Option<String>,

    /// Largest gRPC message, in bytes or with KiB/MiB/GiB (64KiB to 256MiB).
    /// [default: 4MiB] [toml: limits.max_message_size]
    #[arg(long, env = "ATP_MAX_MESSAGE_SIZE", value_name = "SIZE", value_parser = parse_size,
          help_heading = "Limits")]
    max_message_size: Option<usize>,

    /// Largest page a list call may ask for. [default: 1000] [toml: limits.max_page_size]
    #[arg(long, env = "ATP_MAX_PAGE_SIZE", value_name = "N", help_heading = "Limits")]
    max_page_size: Option<u32>,

    /// Page size of a list call that asks for none (at most --max-page-size).
    /// [default: 100] [toml: limits.default_page_size]
    #[arg(long, env = "ATP_DEFAULT_PAGE_SIZE", value_name = "N", help_heading = "Limits")]
    default_page_size: Option<u32>,

    /// Deadline of every request. [default: 10s] [toml: limits.request_timeout]
    #[arg(long, env = "ATP_REQUEST_TIMEOUT", value_name = "DURATION",
          value_parser = parse_duration, help_heading = "Limits")]
    request_timeout: Option<Duration>,

    /// Requests per second per peer (client IP); beyond it the node answers
    /// RESOURCE_EXHAUSTED. 0 turns the limit off. [default: 500] [toml: limits.rate_limit]
    #[arg(long, env = "ATP_RATE_LIMIT", value_name = "N", help_heading = "Limits")]
    rate_limit: Option<u32>,

    /// Requests a peer may send at once above its rate. [default: 1000]
    /// [toml: limits.rate_limit_burst]
    #[arg(long, env = "ATP_RATE_LIMIT_BURST", value_name = "N", help_heading = "Limits")]
    rate_limit_burst: Option<u32>,

    /// Capacity of the envelope replay cache, in entries. [default: 100000]
    /// [toml: limits.replay_cache_capacity]
    #[arg(long, env = "ATP_REPLAY_CACHE_CAPACITY", value_name = "N", help_heading = "Limits")]
    replay_cache_capacity: Option<usize>,

    /// Capacity of the DID resolution cache, in entries. [default: 10000]
    /// [toml: limits.resolution_cache_capacity]
    #[arg(long, env = "ATP_RESOLUTION_CACHE_CAPACITY", value_name = "N", help_heading = "Limits")]
    resolution_cache_capacity: Option<usize>,

    /// Clock skew tolerated on envelope times (at most 1h). [default: 60s]
    /// [toml: limits.envelope_max_skew]
    #[arg(long, env = "ATP_ENVELOPE_MAX_SKEW", value_name = "DURATION",
          value_parser = parse_duration, help_heading = "Limits")]
    envelope_max_skew: Option<Duration>,

    /// Longest validity window an envelope may claim (at most 24h). [default: 300s]
    /// [toml: limits.envelope_max_lifetime]
    #[arg(long, env = "ATP_ENVELOPE_MAX_LIFETIME", value_name = "DURATION",
          value_parser = parse_duration, help_heading = "Limits")]
    envelope_max_lifetime: Option<Duration>,

    /// How often a checkpoint of the transparency log is signed, when the log has grown
    /// (100ms to 24h). [default: 1s] [toml: checkpoint_interval]
    #[arg(long, env = "ATP_CHECKPOINT_INTERVAL", value_name = "DURATION",
          value_parser = parse_duration, help_heading = "Transparency log")]
    checkpoint_interval: Option<Duration>,

    /// Origin line of the log's checkpoints. Keep it stable: clients check it.
    /// [default: atp-node/<scid of the node DID>] [toml: log_origin]
    #[arg(long, env = "ATP_LOG_ORIGIN", value_name = "ORIGIN", help_heading = "Transparency log")]
    log_origin: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Configuration file
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    public_url: Option<String>,
    insecure_plaintext: Option<bool>,
    checkpoint_interval: Option<DurationValue>,
    log_origin: Option<String>,
    tls: FileTls,
    log: FileLog,
    limits: FileLimits,
    trust: FileTrust,
    /// Filled by [`read_file`], never by serde.
    #[serde(skip)]
    enterprise: std::collections::BTreeMap<String, toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    self_signed: Option<bool>,
    require_pq: Option<bool>,
    client_ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileLog {
    format: Option<LogFormat>,
    filter: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileLimits {
    max_message_size: Option<SizeValue>,
    max_page_size: Option<u32>,
    default_page_size: Option<u32>,
    request_timeout: Option<DurationValue>,
    rate_limit: Option<u32>,
    rate_limit_burst: Option<u32>,
    replay_cache_capacity: Option<usize>,
    resolution_cache_capacity: Option<usize>,
    envelope_max_skew: Option<DurationValue>,
    envelope_max_lifetime: Option<DurationValue>,
}

/// `[trust]`: every field optional; durations are strings with a unit ("180d" is not a unit:
/// write "4320h").
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileTrust {
    recompute_interval: Option<DurationValue>,
    proof_ttl: Option<DurationValue>,
    damping: Option<f64>,
    max_iterations: Option<u32>,
    tolerance: Option<f64>,
    half_life: Option<DurationValue>,
    endorsement_weight: Option<f64>,
    receipt_weight: Option<f64>,
    credential_weight: Option<f64>,
    incident_weights: Option<[f64; 3]>,
    negative_multiplier: Option<f64>,
    issuer_prior_weight: Option<f64>,
    score_half_units: Option<f64>,
    level_thresholds: Option<[f64; 4]>,
    incident_open: Option<DurationValue>,
    incident_reporter_min_level: Option<u8>,
    explain_max_depth: Option<usize>,
    explain_max_steps: Option<usize>,
}

impl FileTrust {
    fn merge(self) -> TrustSettings {
        let d = TrustSettings::default();
        let m = d.model;
        let ms = |v: DurationValue| i64::try_from(v.0.as_millis()).unwrap_or(i64::MAX);
        TrustSettings {
            recompute_interval: self.recompute_interval.map_or(d.recompute_interval, |v| v.0),
            proof_ttl: self.proof_ttl.map_or(d.proof_ttl, |v| v.0),
            model: atp_trust::TrustConfig {
                damping: self.damping.unwrap_or(m.damping),
                max_iterations: self.max_iterations.unwrap_or(m.max_iterations),
                tolerance: self.tolerance.unwrap_or(m.tolerance),
                half_life_ms: self.half_life.map_or(m.half_life_ms, ms),
                endorsement_weight: self.endorsement_weight.unwrap_or(m.endorsement_weight),
                receipt_weight: self.receipt_weight.unwrap_or(m.receipt_weight),
                credential_weight: self.credential_weight.unwrap_or(m.credential_weight),
                incident_weights: self.incident_weights.unwrap_or(m.incident_weights),
                negative_multiplier: self.negative_multiplier.unwrap_or(m.negative_multiplier),
                issuer_prior_weight: self.issuer_prior_weight.unwrap_or(m.issuer_prior_weight),
                score_half_units: self.score_half_units.unwrap_or(m.score_half_units),
                level_thresholds: self.level_thresholds.unwrap_or(m.level_thresholds),
                incident_open_ms: self.incident_open.map_or(m.incident_open_ms, ms),
                incident_reporter_min_level: self
                    .incident_reporter_min_level
                    .unwrap_or(m.incident_reporter_min_level),
                explain_max_depth: self.explain_max_depth.unwrap_or(m.explain_max_depth),
                explain_max_steps: self.explain_max_steps.unwrap_or(m.explain_max_steps),
            },
        }
    }
}

/// A duration in the file: a string with a unit, as on the command line.
#[derive(Debug, Clone, Copy)]
struct DurationValue(Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(DurationValue).map_err(serde::de::Error::custom)
    }
}

/// A size in the file: an integer number of bytes, or a string with a unit.
#[derive(Debug, Clone, Copy)]
struct SizeValue(usize);

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SizeValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: an integer number of bytes, or a string such as \"4MiB\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SizeValue, E> {
                usize::try_from(v)
                    .map(SizeValue)
                    .map_err(|_| E::custom(format!("{v} is not a valid size in bytes")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SizeValue, E> {
                usize::try_from(v)
                    .map(SizeValue)
                    .map_err(|_| E::custom(format!("{v} is not a valid size in bytes")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SizeValue, E> {
                parse_size(v).map(SizeValue).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Read and parse the configuration file. Relative paths in it are resolved against its
/// directory.
fn read_file(path: &Path) -> Result<FileConfig, NodeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| NodeError::ConfigRead { path: path.to_owned(), source })?;
    let parse_err = |e: toml::de::Error| NodeError::ConfigParse {
        path: path.to_owned(),
        reason: e.to_string().trim_end().to_owned(),
    };
    // Enterprise sections first: a community build must say "requires the enterprise edition",
    // not "unknown field".
    let mut table: toml::Table = toml::from_str(&text).map_err(parse_err)?;
    let mut enterprise = std::collections::BTreeMap::new();
    for section in ENTERPRISE_SECTIONS {
        let Some(value) = table.remove(*section) else { continue };
        if UNAVAILABLE_ENTERPRISE_SECTIONS.contains(section) {
            return Err(NodeError::EnterpriseFeatureUnavailable { section: (*section).to_owned() });
        }
        if !crate::enterprise_features().contains(section) {
            return Err(NodeError::EnterpriseRequired { section: (*section).to_owned() });
        }
        let toml::Value::Table(t) = value else {
            return Err(NodeError::ConfigParse {
                path: path.to_owned(),
                reason: format!("`{section}` must be a table ([{section}])"),
            });
        };
        enterprise.insert((*section).to_owned(), t);
    }
    // Without enterprise sections, parse the text itself so that errors carry line numbers.
    let mut file: FileConfig = if enterprise.is_empty() {
        toml::from_str(&text).map_err(parse_err)?
    } else {
        FileConfig::deserialize(toml::Value::Table(table)).map_err(parse_err)?
    };
    file.enterprise = enterprise;
    let base = path.parent().unwrap_or(Path::new(""));
    let resolve = |p: &mut Option<PathBuf>| {
        if let Some(p) = p.as_mut().filter(|p| p.is_relative()) {
            *p = base.join(&*p);
        }
    };
    resolve(&mut file.data_dir);
    resolve(&mut file.tls.cert);
    resolve(&mut file.tls.key);
    resolve(&mut file.tls.client_ca);
    Ok(file)
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

impl NodeConfig {
    /// The `clap` command: what `atp-node --help` prints, with every flag and its `ATP_*`
    /// variable. (Environment values are not shown in the help.)
    pub fn command() -> clap::Command {
        Cli::command().mut_args(|a| a.hide_env_values(true))
    }

    /// The command used for parsing: without clap's own environment lookup (clap reads the
    /// process environment; [`NodeConfig::load`] takes the environment as an argument), and with
    /// a later occurrence of a flag overriding an earlier one (environment values are placed
    /// before the real arguments).
    fn parse_command() -> clap::Command {
        Cli::command().args_override_self(true).mut_args(|a| a.env(None::<&str>))
    }

    /// Load the configuration from the process's arguments and environment.
    pub fn from_process() -> Result<Self, NodeError> {
        let mut env = HashMap::new();
        for (k, v) in std::env::vars_os() {
            let Some(k) = k.to_str().filter(|k| k.starts_with("ATP_")) else { continue };
            let v = v.into_string().map_err(|v| NodeError::Env {
                var: k.to_owned(),
                value: v.to_string_lossy().into_owned(),
                reason: "not valid UTF-8".into(),
            })?;
            env.insert(k.to_owned(), v);
        }
        Self::load(std::env::args_os(), &env)
    }

    /// Load and validate the configuration from explicit arguments (`args[0]` is the program
    /// name) and an explicit environment. Only `ATP_*` entries of `env` are looked at; an empty
    /// value counts as unset.
    ///
    /// Precedence: flags > environment > file (`--config` / `ATP_CONFIG`) > defaults.
    pub fn load<I, T>(args: I, env: &HashMap<String, String>) -> Result<Self, NodeError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        if args.is_empty() {
            args.push("atp-node".into());
        }
        let bin = args[0].clone();
        let parser = Self::parse_command();

        // 1. The command line alone: usage errors, --help and --version come from it.
        if let Err(e) = parser.clone().try_get_matches_from(&args) {
            use clap::error::ErrorKind;
            return Err(NodeError::Usage(match e.kind() {
                // Render help from the documented command, which shows the ATP_* variables.
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    Self::command().try_get_matches_from(&args).err().unwrap_or(e)
                }
                _ => e,
            }));
        }

        // 2. The environment, one variable at a time so that an error names its variable.
        let mut merged = vec![bin.clone()];
        let mut known = Vec::new();
        for arg in Self::command().get_arguments() {
            let (Some(var), Some(long)) = (arg.get_env().and_then(|v| v.to_str()), arg.get_long())
            else {
                continue;
            };
            known.push(var.to_owned());
            let Some(value) = env.get(var).filter(|v| !v.is_empty()) else { continue };
            let synthetic: OsString = format!("--{long}={value}").into();
            if let Err(e) = parser.clone().try_get_matches_from([bin.clone(), synthetic.clone()]) {
                return Err(NodeError::Env {
                    var: var.to_owned(),
                    value: value.chars().take(256).collect(),
                    reason: clap_reason(&e),
                });
            }
            merged.push(synthetic);
        }
        merged.extend(args.into_iter().skip(1));
        let matches = parser.try_get_matches_from(merged)?;
        let cli = Cli::from_arg_matches(&matches)?;

        let mut unknown_env: Vec<String> = env
            .keys()
            .filter(|k| {
                k.starts_with("ATP_")
                    && !known.iter().any(|n| n == *k)
                    && !OTHER_ATP_VARS.contains(&k.as_str())
            })
            .cloned()
            .collect();
        unknown_env.sort();

        let key_passphrase = match env.get(KEY_PASSPHRASE_ENV) {
            None => None,
            Some(p) if p.is_empty() => {
                return Err(NodeError::Env {
                    var: KEY_PASSPHRASE_ENV.to_owned(),
                    value: String::new(),
                    reason: "the passphrase is empty; unset the variable to store keys \
                             unencrypted, or give a passphrase"
                        .into(),
                });
            }
            Some(p) => Some(Passphrase::new(p.clone())),
        };

        // 3. The file, if one is named.
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };

        // 4. Merge over the defaults.
        let d = NodeConfig::default();
        let dl = Limits::default();
        let config = NodeConfig {
            config_file: cli.config,
            data_dir: cli.data_dir.or(file.data_dir).unwrap_or(d.data_dir),
            listen: cli.listen.or(file.listen).unwrap_or(d.listen),
            public_url: cli.public_url.or(file.public_url),
            insecure_plaintext: cli.insecure_plaintext.or(file.insecure_plaintext).unwrap_or(false),
            tls: TlsConfig {
                cert: cli.tls_cert.or(file.tls.cert),
                key: cli.tls_key.or(file.tls.key),
                self_signed: cli.tls_self_signed.or(file.tls.self_signed).unwrap_or(false),
                require_pq: cli.tls_require_pq.or(file.tls.require_pq).unwrap_or(false),
                client_ca: cli.tls_client_ca.or(file.tls.client_ca),
            },
            log: LogConfig {
                format: cli.log_format.or(file.log.format).unwrap_or(d.log.format),
                filter: cli.log_filter.or(file.log.filter).unwrap_or(d.log.filter),
            },
            limits: Limits {
                max_message_bytes: cli
                    .max_message_size
                    .or(file.limits.max_message_size.map(|s| s.0))
                    .unwrap_or(dl.max_message_bytes),
                max_page_size: cli
                    .max_page_size
                    .or(file.limits.max_page_size)
                    .unwrap_or(dl.max_page_size),
                default_page_size: cli
                    .default_page_size
                    .or(file.limits.default_page_size)
                    .unwrap_or(dl.default_page_size),
                request_timeout: cli
                    .request_timeout
                    .or(file.limits.request_timeout.map(|v| v.0))
                    .unwrap_or(dl.request_timeout),
                rate_limit_per_second: cli
                    .rate_limit
                    .or(file.limits.rate_limit)
                    .unwrap_or(dl.rate_limit_per_second),
                rate_limit_burst: cli
                    .rate_limit_burst
                    .or(file.limits.rate_limit_burst)
                    .unwrap_or(dl.rate_limit_burst),
                replay_cache_capacity: cli
                    .replay_cache_capacity
                    .or(file.limits.replay_cache_capacity)
                    .unwrap_or(dl.replay_cache_capacity),
                resolution_cache_capacity: cli
                    .resolution_cache_capacity
                    .or(file.limits.resolution_cache_capacity)
                    .unwrap_or(dl.resolution_cache_capacity),
                envelope_max_skew: cli
                    .envelope_max_skew
                    .or(file.limits.envelope_max_skew.map(|v| v.0))
                    .unwrap_or(dl.envelope_max_skew),
                envelope_max_lifetime: cli
                    .envelope_max_lifetime
                    .or(file.limits.envelope_max_lifetime.map(|v| v.0))
                    .unwrap_or(dl.envelope_max_lifetime),
            },
            checkpoint_interval: cli
                .checkpoint_interval
                .or(file.checkpoint_interval.map(|v| v.0))
                .unwrap_or(d.checkpoint_interval),
            log_origin: cli.log_origin.or(file.log_origin),
            key_passphrase,
            unknown_env,
            trust: file.trust.merge(),
            enterprise: EnterpriseSections(file.enterprise),
        };
        config.validate()?;
        Ok(config)
    }

    /// Check ranges and consistency. [`NodeConfig::load`] calls it; call it again after
    /// changing a loaded configuration by hand.
    pub fn validate(&self) -> Result<(), NodeError> {
        let invalid = |option: &str, reason: String| {
            Err(NodeError::InvalidConfig { option: option.to_owned(), reason })
        };
        let l = &self.limits;

        if self.data_dir.as_os_str().is_empty() {
            return invalid(OPT_DATA_DIR, "must not be empty".into());
        }
        if !(MIN_MAX_MESSAGE_BYTES..=MAX_MAX_MESSAGE_BYTES).contains(&l.max_message_bytes) {
            return invalid(
                OPT_MAX_MESSAGE_SIZE,
                format!(
                    "{} bytes is out of range: it must be between 64KiB (a key event alone may \
                     be 64 KiB) and 256MiB",
                    l.max_message_bytes
                ),
            );
        }
        if l.max_page_size == 0 || l.max_page_size > MAX_PAGE_SIZE_LIMIT {
            return invalid(
                OPT_MAX_PAGE_SIZE,
                format!(
                    "{} is out of range: it must be between 1 and {MAX_PAGE_SIZE_LIMIT}",
                    l.max_page_size
                ),
            );
        }
        if l.default_page_size == 0 || l.default_page_size > l.max_page_size {
            return invalid(
                OPT_DEFAULT_PAGE_SIZE,
                format!(
                    "{} is out of range: it must be between 1 and the maximum page size ({})",
                    l.default_page_size, l.max_page_size
                ),
            );
        }
        if l.request_timeout.is_zero() || l.request_timeout > MAX_REQUEST_TIMEOUT {
            return invalid(
                OPT_REQUEST_TIMEOUT,
                format!(
                    "{:?} is out of range: it must be more than 0 and at most 1h",
                    l.request_timeout
                ),
            );
        }
        if l.rate_limit_per_second > 0 && l.rate_limit_burst == 0 {
            return invalid(
                OPT_RATE_LIMIT_BURST,
                "must be at least 1 while the rate limit is on (set the rate limit to 0 to turn \
                 it off)"
                    .into(),
            );
        }
        if l.replay_cache_capacity == 0 {
            return invalid(
                OPT_REPLAY_CACHE_CAPACITY,
                "must be at least 1: without a replay cache every envelope could be replayed"
                    .into(),
            );
        }
        if l.resolution_cache_capacity == 0 {
            return invalid(OPT_RESOLUTION_CACHE_CAPACITY, "must be at least 1".into());
        }
        if l.envelope_max_skew > MAX_ENVELOPE_MAX_SKEW {
            return invalid(
                OPT_ENVELOPE_MAX_SKEW,
                format!("{:?} is out of range: it must be at most 1h", l.envelope_max_skew),
            );
        }
        if l.envelope_max_lifetime.is_zero() || l.envelope_max_lifetime > MAX_ENVELOPE_MAX_LIFETIME
        {
            return invalid(
                OPT_ENVELOPE_MAX_LIFETIME,
                format!(
                    "{:?} is out of range: it must be more than 0 and at most 24h",
                    l.envelope_max_lifetime
                ),
            );
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
const OPT_MAX_MESSAGE_SIZE: &str =
    "--max-message-size / ATP_MAX_MESSAGE_SIZE / limits.max_message_size";
const OPT_MAX_PAGE_SIZE: &str = "--max-page-size / ATP_MAX_PAGE_SIZE / limits.max_page_size";
const OPT_DEFAULT_PAGE_SIZE: &str =
    "--default-page-size / ATP_DEFAULT_PAGE_SIZE / limits.default_page_size";
const OPT_REQUEST_TIMEOUT: &str =
    "--request-timeout / ATP_REQUEST_TIMEOUT / limits.request_timeout";
const OPT_RATE_LIMIT_BURST: &str =
    "--rate-limit-burst / ATP_RATE_LIMIT_BURST / limits.rate_limit_burst";
const OPT_REPLAY_CACHE_CAPACITY: &str =
    "--replay-cache-capacity / ATP_REPLAY_CACHE_CAPACITY / limits.replay_cache_capacity";
const OPT_RESOLUTION_CACHE_CAPACITY: &str = "--resolution-cache-capacity / \
     ATP_RESOLUTION_CACHE_CAPACITY / limits.resolution_cache_capacity";
const OPT_ENVELOPE_MAX_SKEW: &str =
    "--envelope-max-skew / ATP_ENVELOPE_MAX_SKEW / limits.envelope_max_skew";
const OPT_ENVELOPE_MAX_LIFETIME: &str =
    "--envelope-max-lifetime / ATP_ENVELOPE_MAX_LIFETIME / limits.envelope_max_lifetime";
const OPT_CHECKPOINT_INTERVAL: &str =
    "--checkpoint-interval / ATP_CHECKPOINT_INTERVAL / checkpoint_interval";
const OPT_LOG_ORIGIN: &str = "--log-origin / ATP_LOG_ORIGIN / log_origin";

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

/// Parse a duration with a unit: `500ms`, `10s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("{s:?} is not a duration: write a whole number and a unit, e.g. 10s"));
    }
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is too large"))?;
    let secs = |mul: u64| {
        n.checked_mul(mul).map(Duration::from_secs).ok_or_else(|| format!("{s:?} is too large"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "" => Err(format!("{s:?} has no unit: write e.g. {n}s (units: ms, s, m, h)")),
        other => Err(format!("{s:?} has an unknown unit {other:?} (units: ms, s, m, h)")),
    }
}

/// Parse a size: a number of bytes, optionally with `B`, `KiB`, `MiB` or `GiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("{s:?} is not a size: write a number of bytes, or e.g. 4MiB"));
    }
    let n: usize = digits.parse().map_err(|_| format!("{s:?} is too large"))?;
    let mul: usize = match unit.trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!("{s:?} has an unknown unit {other:?} (units: B, KiB, MiB, GiB)"));
        }
    };
    n.checked_mul(mul).ok_or_else(|| format!("{s:?} is too large"))
}
