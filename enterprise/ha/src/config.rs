//! The `[ha]` section of the node configuration, and connecting to the writable database.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::pg::{ConnectError, PgConfig, PgStore};

/// The shortest staleness bound the key event log cache accepts other than 0: the feed proves
/// it caught up four times per bound, one marker transaction each, and a shorter bound would
/// cost more marker transactions than it could ever be met by.
pub const MIN_KEL_CACHE_STALENESS_MS: u64 = 50;

/// The most database hosts `[ha]` may list.
pub const MAX_HOSTS: usize = 16;
/// The most connections one node may open.
pub const MAX_POOL_SIZE: u32 = 256;

/// Everything that goes wrong in the HA edition.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HaError {
    /// The `[ha]` section is invalid; the message names the key.
    #[error("invalid [ha] section: {0}")]
    Config(String),
    /// No listed host accepted a connection as a writable primary.
    #[error("no writable PostgreSQL primary among {hosts}: {reasons}")]
    NoPrimary {
        /// The hosts tried, in order.
        hosts: String,
        /// Why each was passed over.
        reasons: String,
    },
    /// The store failed (migrations, pool).
    #[error(transparent)]
    Store(#[from] atp_store::StoreError),
}

/// The `[ha]` section: where the cluster's PostgreSQL is, and how this node uses it.
///
/// ```toml
/// [ha]
/// hosts = ["10.0.0.5:5432", "10.0.0.6:5432"]
/// database = "atp"
/// user = "atp"
/// password_env = "ATP_HA_DB_PASSWORD"
/// tls_ca_file = "/etc/atp/postgres-ca.pem"
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HaConfig {
    /// The PostgreSQL servers, `host:port`, tried in order; the node uses the first that is a
    /// writable primary (`pg_is_in_recovery()` is false). 1 to [`MAX_HOSTS`].
    pub hosts: Vec<String>,
    /// The database name.
    pub database: String,
    /// The database user.
    pub user: String,
    /// The environment variable that holds the user's password, if it has one. The password
    /// itself is never written in the configuration file.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The most connections this node opens. Default 16, at most [`MAX_POOL_SIZE`].
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// How long a connection attempt, and a wait for a free connection, may take. Default
    /// 5000 ms.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// PostgreSQL's `statement_timeout` on every connection: no statement, and no wait for the
    /// log's row lock, lasts longer. Default 10000 ms.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// How long the checkpoint signer's lease lasts unless renewed (it is renewed every
    /// checkpoint interval). After its holder dies, another node signs within this time plus
    /// one interval. Default 5000 ms, 1000 to 60000.
    #[serde(default = "default_lease_ttl_ms")]
    pub lease_ttl_ms: u64,
    /// The longest a node's cached key event logs may lag behind the database: another node's
    /// append reaches the caches by `LISTEN`/`NOTIFY`, and a cached log is served without a
    /// database read only while the node has proved, within this time, that it received every
    /// notification. 0 makes every read re-check the stored head instead (exact, one more
    /// statement per read). Default 250 ms; 0, or [`MIN_KEL_CACHE_STALENESS_MS`] to 5000. The
    /// feed holds one connection of the pool, so `pool_size` must then be at least 2.
    #[serde(default = "default_kel_cache_max_staleness_ms")]
    pub kel_cache_max_staleness_ms: u64,
    /// How long a node goes on serving after its shutdown began, with its health already
    /// NOT_SERVING, so that the load balancer moves traffic away first. Default 2000 ms, 0 to
    /// 60000.
    #[serde(default = "default_drain_ms")]
    pub drain_ms: u64,
    /// TLS to the database: `verify-full` (the server's certificate must chain to
    /// [`HaConfig::tls_ca_file`], or to a public CA without it, and name the host) or
    /// `disable`. Default: `verify-full`, or `disable` when every host is loopback.
    #[serde(default)]
    pub tls: Option<DbTls>,
    /// A PEM file of the CA certificate(s) that sign the database servers' certificates. Without
    /// it, `verify-full` checks against the public web PKI roots.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// With `tls = "disable"`, hosts other than loopback are refused unless this says the
    /// network is trusted.
    #[serde(default)]
    pub allow_plaintext: bool,
}

/// How the node's connections to PostgreSQL are protected.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DbTls {
    /// TLS, with the server's certificate chain and host name checked (libpq's
    /// `sslmode=verify-full`). There is no weaker TLS mode: encryption without checking whom
    /// it is with stops only a passive eavesdropper.
    VerifyFull,
    /// No TLS: loopback, or a network the operator trusts (`allow_plaintext`).
    Disable,
}

fn default_pool_size() -> u32 {
    PgConfig::default().pool_size
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

fn default_statement_timeout_ms() -> u64 {
    10_000
}

fn default_lease_ttl_ms() -> u64 {
    5_000
}

fn default_kel_cache_max_staleness_ms() -> u64 {
    250
}

fn default_drain_ms() -> u64 {
    2_000
}

/// A `host:port` pair, checked.
fn parse_host(entry: &str) -> Result<(String, u16), HaError> {
    let bad = || HaError::Config(format!("hosts: {entry:?} is not host:port"));
    let (host, port) = entry.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.len() > 253 || host.chars().any(|c| c.is_whitespace()) {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl HaConfig {
    /// Checks every key; the message names the one that is wrong.
    pub fn validate(&self) -> Result<(), HaError> {
        if self.hosts.is_empty() || self.hosts.len() > MAX_HOSTS {
            return Err(HaError::Config(format!("hosts: list 1 to {MAX_HOSTS} servers")));
        }
        let tls = self.tls_mode()?;
        for entry in &self.hosts {
            let (host, _) = parse_host(entry)?;
            if tls == DbTls::Disable && !self.allow_plaintext && !is_loopback(&host) {
                return Err(HaError::Config(format!(
                    "hosts: {entry:?} is not a loopback address and tls = \"disable\"; use \
                     tls = \"verify-full\", or set allow_plaintext = true only on a trusted \
                     network"
                )));
            }
        }
        if let Some(path) = &self.tls_ca_file {
            if tls == DbTls::Disable {
                return Err(HaError::Config("tls_ca_file: given, but tls is \"disable\"".into()));
            }
            if let Err(e) = std::fs::File::open(path) {
                return Err(HaError::Config(format!(
                    "tls_ca_file: {} cannot be read: {e}",
                    path.display()
                )));
            }
        }
        for (key, value) in [("database", &self.database), ("user", &self.user)] {
            if value.is_empty() || value.len() > 63 || value.chars().any(char::is_control) {
                return Err(HaError::Config(format!("{key}: 1 to 63 characters")));
            }
        }
        if let Some(var) = &self.password_env
            && std::env::var_os(var).is_none()
        {
            return Err(HaError::Config(format!("password_env: ${var} is not set")));
        }
        if self.pool_size == 0 || self.pool_size > MAX_POOL_SIZE {
            return Err(HaError::Config(format!("pool_size: 1 to {MAX_POOL_SIZE}")));
        }
        for (key, ms) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("statement_timeout_ms", self.statement_timeout_ms),
        ] {
            if !(100..=600_000).contains(&ms) {
                return Err(HaError::Config(format!("{key}: 100 to 600000")));
            }
        }
        if !(1_000..=60_000).contains(&self.lease_ttl_ms) {
            return Err(HaError::Config("lease_ttl_ms: 1000 to 60000".into()));
        }
        if self.kel_cache_max_staleness_ms != 0
            && !(MIN_KEL_CACHE_STALENESS_MS..=5_000).contains(&self.kel_cache_max_staleness_ms)
        {
            return Err(HaError::Config(format!(
                "kel_cache_max_staleness_ms: 0 (exact), or {MIN_KEL_CACHE_STALENESS_MS} to 5000"
            )));
        }
        if self.kel_cache_max_staleness_ms != 0 && self.pool_size < 2 {
            return Err(HaError::Config(
                "pool_size: at least 2 with kel_cache_max_staleness_ms > 0 (the change feed \
                 holds one connection)"
                    .into(),
            ));
        }
        if self.drain_ms > 60_000 {
            return Err(HaError::Config("drain_ms: 0 to 60000".into()));
        }
        Ok(())
    }

    /// The TLS mode in force: the configured one, or by default `verify-full` unless every host
    /// is loopback.
    pub fn tls_mode(&self) -> Result<DbTls, HaError> {
        if let Some(mode) = self.tls {
            return Ok(mode);
        }
        let mut all_loopback = true;
        for entry in &self.hosts {
            all_loopback &= is_loopback(&parse_host(entry)?.0);
        }
        Ok(if all_loopback { DbTls::Disable } else { DbTls::VerifyFull })
    }

    /// How long the checkpoint signer's lease lasts.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    /// The longest a cached key event log may lag behind the database; `None`: no lag, every
    /// read re-checks the stored head.
    pub fn kel_cache_max_staleness(&self) -> Option<Duration> {
        (self.kel_cache_max_staleness_ms > 0)
            .then(|| Duration::from_millis(self.kel_cache_max_staleness_ms))
    }

    /// How long a node drains before it stops.
    pub fn drain_grace(&self) -> Duration {
        Duration::from_millis(self.drain_ms)
    }

    fn options(&self, host: &str, port: u16, tls: DbTls) -> PgConnectOptions {
        let mut options = PgConnectOptions::new()
            .host(host)
            .port(port)
            .database(&self.database)
            .username(&self.user)
            .application_name("atp-node");
        options = match tls {
            DbTls::VerifyFull => options.ssl_mode(PgSslMode::VerifyFull),
            DbTls::Disable => options.ssl_mode(PgSslMode::Disable),
        };
        if let Some(ca) = &self.tls_ca_file {
            options = options.ssl_root_cert(ca);
        }
        if let Some(password) = self.password_env.as_ref().and_then(|v| std::env::var(v).ok()) {
            options = options.password(&password);
        }
        options
    }

    /// Connects to the first listed host that is a writable primary and opens the store there;
    /// the store follows the primary among the hosts from then on.
    pub async fn connect(&self) -> Result<PgStore, HaError> {
        self.validate()?;
        let timeout = Duration::from_millis(self.connect_timeout_ms);
        let tls = self.tls_mode()?;
        let candidates = self
            .hosts
            .iter()
            .map(|entry| parse_host(entry).map(|(host, port)| self.options(&host, port, tls)))
            .collect::<Result<Vec<_>, _>>()?;
        let config = PgConfig {
            pool_size: self.pool_size,
            acquire_timeout: timeout,
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
        };
        match PgStore::connect_any(candidates, &config).await {
            Ok(store) => Ok(store),
            Err(ConnectError::Store(e)) => Err(e.into()),
            Err(ConnectError::NoPrimary(reasons)) => Err(HaError::NoPrimary {
                hosts: self.hosts.join(", "),
                reasons: reasons.join("; "),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(hosts: &[&str]) -> HaConfig {
        HaConfig {
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            database: "atp".into(),
            user: "atp".into(),
            password_env: None,
            pool_size: 16,
            connect_timeout_ms: 5_000,
            statement_timeout_ms: 10_000,
            lease_ttl_ms: 5_000,
            kel_cache_max_staleness_ms: 250,
            drain_ms: 2_000,
            tls: None,
            tls_ca_file: None,
            allow_plaintext: false,
        }
    }

    #[test]
    fn every_key_is_validated() {
        assert!(config(&["127.0.0.1:5432", "[::1]:5433", "localhost:1"]).validate().is_ok());
        let refused = |c: HaConfig| c.validate().unwrap_err().to_string();
        assert!(refused(config(&[])).contains("hosts"));
        assert!(refused(config(&["127.0.0.1"])).contains("not host:port"));
        assert!(refused(config(&["127.0.0.1:0"])).contains("not host:port"));
        assert!(refused(config(&["127.0.0.1:99999"])).contains("not host:port"));
        assert!(refused(config(&[":5432"])).contains("not host:port"));
        // Off loopback, TLS with verification is the default; plaintext must be asked for twice.
        assert_eq!(config(&["10.0.0.5:5432"]).tls_mode().unwrap(), DbTls::VerifyFull);
        assert_eq!(config(&["127.0.0.1:5432", "[::1]:1"]).tls_mode().unwrap(), DbTls::Disable);
        assert!(config(&["10.0.0.5:5432"]).validate().is_ok());
        let mut c = config(&["127.0.0.1:5432", "10.0.0.5:5432"]);
        assert_eq!(c.tls_mode().unwrap(), DbTls::VerifyFull);
        c.tls = Some(DbTls::Disable);
        assert!(refused(c).contains("allow_plaintext"));
        let mut c = config(&["127.0.0.1:5432"]);
        c.tls_ca_file = Some("/nonexistent/atp-ca.pem".into());
        assert!(refused(c.clone()).contains("tls_ca_file"));
        c.tls_ca_file = Some(std::env::current_exe().unwrap());
        assert!(refused(c.clone()).contains("tls is \"disable\""));
        c.tls = Some(DbTls::VerifyFull);
        assert!(c.validate().is_ok());
        let many: Vec<String> =
            (0..=MAX_HOSTS).map(|i| format!("127.0.0.1:{}", 1000 + i)).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(refused(config(&many)).contains("hosts"));
        let mut c = config(&["10.0.0.5:5432"]);
        c.tls = Some(DbTls::Disable);
        c.allow_plaintext = true;
        assert!(c.validate().is_ok());
        let mut c = config(&["127.0.0.1:5432"]);
        c.pool_size = 0;
        assert!(refused(c).contains("pool_size"));
        let mut c = config(&["127.0.0.1:5432"]);
        c.statement_timeout_ms = 10;
        assert!(refused(c).contains("statement_timeout_ms"));
        let mut c = config(&["127.0.0.1:5432"]);
        c.drain_ms = 60_001;
        assert!(refused(c).contains("drain_ms"));
        let mut c = config(&["127.0.0.1:5432"]);
        c.kel_cache_max_staleness_ms = 5_001;
        assert!(refused(c.clone()).contains("kel_cache_max_staleness_ms"));
        c.kel_cache_max_staleness_ms = MIN_KEL_CACHE_STALENESS_MS - 1;
        assert!(refused(c.clone()).contains("kel_cache_max_staleness_ms"));
        c.kel_cache_max_staleness_ms = MIN_KEL_CACHE_STALENESS_MS;
        c.pool_size = 1;
        assert!(refused(c.clone()).contains("pool_size: at least 2"));
        c.pool_size = 2;
        assert!(c.validate().is_ok());
        c.kel_cache_max_staleness_ms = 0;
        assert_eq!(c.kel_cache_max_staleness(), None, "0: exact head checks");
        let mut c = config(&["127.0.0.1:5432"]);
        c.lease_ttl_ms = 999;
        assert!(refused(c).contains("lease_ttl_ms"));
        let mut c = config(&["127.0.0.1:5432"]);
        c.database = String::new();
        assert!(refused(c).contains("database"));
        let mut c = config(&["127.0.0.1:5432"]);
        c.password_env = Some("ATP_HA_TEST_VARIABLE_THAT_IS_NOT_SET".into());
        assert!(refused(c).contains("password_env"));
    }

    #[test]
    fn tls_modes_parse_and_nothing_weaker_exists() {
        let parse = |mode: &str| {
            toml::from_str::<HaConfig>(&format!(
                "hosts = [\"10.0.0.5:5432\"]\ndatabase = \"atp\"\nuser = \"atp\"\ntls = \"{mode}\"\n"
            ))
        };
        assert_eq!(parse("verify-full").unwrap().tls, Some(DbTls::VerifyFull));
        assert_eq!(parse("disable").unwrap().tls, Some(DbTls::Disable));
        for weaker in ["require", "prefer", "verify-ca", "allow", ""] {
            assert!(parse(weaker).is_err(), "{weaker}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let parsed: Result<HaConfig, _> = toml::from_str(
            "hosts = [\"127.0.0.1:5432\"]\ndatabase = \"atp\"\nuser = \"atp\"\npasword = \"x\"\n",
        );
        assert!(parsed.is_err());
    }
}
