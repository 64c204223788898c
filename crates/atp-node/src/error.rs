//! [`NodeError`], the error type of every library module of `atp-node`.
//!
//! Each message is meant to be read by an operator at start-up: it names the file, option or
//! environment variable at fault and, where there is one, the fix.

use std::path::PathBuf;

/// Everything that can stop the node from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The command line could not be parsed, or `--help` / `--version` was asked for. The binary
    /// hands this to [`clap::Error::exit`], which prints it and picks the exit code (0 for help).
    #[error("{0}")]
    Usage(#[from] clap::Error),

    /// An `ATP_*` environment variable holds a value its option does not accept.
    #[error("environment variable {var}={value:?} is invalid: {reason}")]
    Env {
        /// The variable, e.g. `ATP_LISTEN`.
        var: String,
        /// The offending value (never a secret: the passphrase variable is not parsed here).
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// The configuration file given by `--config` / `ATP_CONFIG` could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The configuration file is not valid TOML, has an unknown key, or a value of the wrong type.
    #[error("invalid configuration file {path}: {reason}")]
    ConfigParse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column where TOML gives them).
        reason: String,
    },

    /// The configuration file has an enterprise section (`[sso]`, `[rbac]`, …) and this build
    /// does not contain the enterprise edition.
    #[error("`{section}` requires the ATP enterprise edition (build with `--features enterprise`)")]
    EnterpriseRequired {
        /// The section name, e.g. `sso`.
        section: String,
    },

    /// The configuration file has an enterprise section whose feature no build contains yet
    /// (`[audit]`, `[ha]`, `[console]`), so no build option would make it work.
    #[error("`{section}` is an enterprise feature that is not available yet, in any build")]
    EnterpriseFeatureUnavailable {
        /// The section name, e.g. `ha`.
        section: String,
    },

    /// A configuration value is out of range or inconsistent with another one.
    #[error("invalid configuration: {option}: {reason}")]
    InvalidConfig {
        /// The option, in all its spellings: `--flag` / `ATP_VAR` / `toml.key`.
        option: String,
        /// What is wrong and, where possible, how to fix it.
        reason: String,
    },

    /// The listen address is not a loopback address, no TLS is configured, and
    /// `--insecure-plaintext` was not given.
    #[error(
        "refusing to listen on {listen} without TLS: plaintext is allowed only on a loopback \
         address. Configure --tls-cert and --tls-key (or --tls-self-signed), listen on \
         127.0.0.1 / [::1], or pass --insecure-plaintext (ATP_INSECURE_PLAINTEXT=true, \
         `insecure_plaintext = true`) if a TLS-terminating proxy protects this listener"
    )]
    PlaintextNonLoopback {
        /// The configured listen address.
        listen: std::net::SocketAddr,
    },

    /// A file-system operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done, e.g. `create the data directory`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// A secret file (key or admin token) is readable or writable by group or others.
    #[error(
        "{path} has mode {mode:03o}: it must not be accessible by group or others. \
         Fix it with `chmod 600 {path}`"
    )]
    InsecureFilePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The data directory is writable by group or others, so another user could replace the
    /// node's key files.
    #[error(
        "the data directory {path} has mode {mode:03o}: it must not be writable by group or \
         others. Fix it with `chmod 700 {path}`"
    )]
    InsecureDirectoryPermissions {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// Another process holds the data directory's lock: one node per data directory, because
    /// the node keeps the store's single-writer state (log frontier, KEL cache) in memory.
    #[error(
        "the data directory {path} is in use by another atp-node (it holds {lock}); run one node \
         per data directory"
    )]
    DataDirInUse {
        /// The directory.
        path: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },

    /// A key file could not be read, decrypted or written.
    #[error("key file {path}: {source}")]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// The cause.
        source: atp_crypto::CryptoError,
    },

    /// The node's key event log does not parse or does not verify.
    #[error("the node's key event log {path} is invalid: {source}; refusing to start")]
    Kel {
        /// The KEL file.
        path: PathBuf,
        /// The verification error.
        source: atp_core::CoreError,
    },

    /// Creating the node identity (inception) failed.
    #[error("cannot create the node identity: {0}")]
    Inception(#[source] atp_core::CoreError),

    /// `node.key` does not hold the current key of the DID recorded in `node.kel.json`.
    #[error(
        "{key_path} does not hold the current key of {did} recorded in {kel_path}: the key file \
         or the log was replaced or tampered with; refusing to start. Restore both from the same \
         backup"
    )]
    KeyMismatch {
        /// The current key file.
        key_path: PathBuf,
        /// The KEL file.
        kel_path: PathBuf,
        /// The DID of the KEL.
        did: String,
    },

    /// `node.next.key` is not the key the KEL's last event committed to.
    #[error(
        "{key_path} is not the next key that {did} committed to in {kel_path}: the key file or \
         the log was replaced or tampered with; refusing to start (without the committed next \
         key the identity can never be rotated). Restore both from the same backup"
    )]
    NextKeyMismatch {
        /// The next key file.
        key_path: PathBuf,
        /// The KEL file.
        kel_path: PathBuf,
        /// The DID of the KEL.
        did: String,
    },

    /// Some, but not all, of the identity files exist.
    #[error(
        "the node identity in {dir} is incomplete: found {present}, missing {missing}. If the \
         first start was interrupted and this node never ran, remove {present} and start again; \
         otherwise restore the missing files from a backup"
    )]
    IncompleteIdentity {
        /// The data directory.
        dir: PathBuf,
        /// The files found, comma-separated.
        present: String,
        /// The files missing, comma-separated.
        missing: String,
    },

    /// The node's own DID has been deactivated.
    #[error("the node's DID {did} is deactivated; a deactivated identity cannot serve")]
    Deactivated {
        /// The DID.
        did: String,
    },

    /// `admin.token` exists but does not hold a usable token.
    #[error("admin token {path}: {reason}. Delete the file and restart to generate a new token")]
    AdminToken {
        /// The token file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The operating system's random number generator failed.
    #[error("random number generator: {0}")]
    Rng(#[source] atp_crypto::CryptoError),

    /// The log subscriber could not be installed.
    #[error("cannot initialise logging: {0}")]
    Telemetry(String),
}
