//! The command line (and, through clap's `env`, the documentation of the environment
//! variables).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Arg, Parser};

use super::{LogFormat, parse_duration};
use atp_server::Limits;

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
pub(super) struct Cli {
    /// TOML configuration file (optional; it must exist if given). Relative paths inside it are
    /// resolved against the file's directory. Unknown keys are errors.
    #[arg(long, env = "ATP_CONFIG", value_name = "PATH")]
    pub(super) config: Option<PathBuf>,

    /// Data directory: node keys, node KEL, admin token and the store. Created with mode 0700
    /// on first run. [default: ./atp-data] [toml: data_dir]
    #[arg(long, env = "ATP_DATA_DIR", value_name = "DIR")]
    pub(super) data_dir: Option<PathBuf>,

    /// Address (IP:port) that gRPC and HTTP listen on. [default: 127.0.0.1:7443] [toml: listen]
    #[arg(long, env = "ATP_LISTEN", value_name = "ADDR")]
    pub(super) listen: Option<SocketAddr>,

    /// URL clients reach this node at (http:// or https://), recorded as the #atp-node service
    /// of the node's DID when the identity is created. [default: derived from --listen; none
    /// if it is 0.0.0.0, [::] or port 0] [toml: public_url]
    #[arg(long, env = "ATP_PUBLIC_URL", value_name = "URL")]
    pub(super) public_url: Option<String>,

    /// Allow plaintext (no TLS) on a non-loopback listen address, e.g. behind a
    /// TLS-terminating proxy. Without it the node refuses to start in that case.
    /// [default: false] [toml: insecure_plaintext]
    #[arg(long, env = "ATP_INSECURE_PLAINTEXT", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true",
          value_parser = BoolishValueParser::new())]
    pub(super) insecure_plaintext: Option<bool>,

    /// PEM certificate chain; turns TLS on. Requires --tls-key. [toml: tls.cert]
    #[arg(long, env = "ATP_TLS_CERT", value_name = "PATH", help_heading = "TLS")]
    pub(super) tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert. [toml: tls.key]
    #[arg(long, env = "ATP_TLS_KEY", value_name = "PATH", help_heading = "TLS")]
    pub(super) tls_key: Option<PathBuf>,

    /// Turn TLS on with a generated self-signed certificate, for local trials.
    /// [default: false] [toml: tls.self_signed]
    #[arg(long, env = "ATP_TLS_SELF_SIGNED", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true",
          value_parser = BoolishValueParser::new(), help_heading = "TLS")]
    pub(super) tls_self_signed: Option<bool>,

    /// Accept only the post-quantum hybrid key exchange X25519MLKEM768 (by default it is
    /// preferred and X25519 is still accepted). Requires TLS. [default: false]
    /// [toml: tls.require_pq]
    #[arg(long, env = "ATP_TLS_REQUIRE_PQ", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true",
          value_parser = BoolishValueParser::new(), help_heading = "TLS")]
    pub(super) tls_require_pq: Option<bool>,

    /// PEM CA bundle for mutual TLS: when set, clients must present a certificate issued by
    /// one of these CAs. Requires TLS. [toml: tls.client_ca]
    #[arg(long, env = "ATP_TLS_CLIENT_CA", value_name = "PATH", help_heading = "TLS")]
    pub(super) tls_client_ca: Option<PathBuf>,

    /// Log format. [default: text] [toml: log.format]
    #[arg(long, env = "ATP_LOG_FORMAT", value_name = "FORMAT", help_heading = "Logging")]
    pub(super) log_format: Option<LogFormat>,

    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `warn,atp_node=debug`.
    /// [default: info] [toml: log.filter]
    #[arg(long = "log", env = "ATP_LOG", value_name = "FILTER", help_heading = "Logging")]
    pub(super) log_filter: Option<String>,

    /// How often a checkpoint of the transparency log is signed, when the log has grown
    /// (100ms to 24h). [default: 1s] [toml: checkpoint_interval]
    #[arg(long, env = "ATP_CHECKPOINT_INTERVAL", value_name = "DURATION",
          value_parser = parse_duration, help_heading = "Transparency log")]
    pub(super) checkpoint_interval: Option<Duration>,

    /// Origin line of the log's checkpoints. Keep it stable: clients check it.
    /// [default: atp-node/<scid of the node DID>] [toml: log_origin]
    #[arg(long, env = "ATP_LOG_ORIGIN", value_name = "ORIGIN", help_heading = "Transparency log")]
    pub(super) log_origin: Option<String>,
}

/// One flag per limit, each with its `ATP_*` variable, from [`Limits::SPECS`]: a limit added
/// there gets its flag, variable and help here without an edit.
pub(super) fn limit_args() -> impl Iterator<Item = Arg> {
    Limits::SPECS.iter().map(|spec| {
        let mut doc = spec.doc.lines().map(str::trim).collect::<Vec<_>>().join(" ");
        doc.push_str(&format!(" [default: {}] [toml: limits.{}]", (spec.default)(), spec.key));
        let check = spec.check;
        Arg::new(spec.key)
            .long(spec.flag())
            .env(spec.env())
            .value_name(spec.value_name)
            .help(doc)
            .help_heading("Limits")
            .value_parser(move |text: &str| check(text).map(|()| text.to_owned()))
    })
}
