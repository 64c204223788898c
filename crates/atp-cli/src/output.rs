//! Errors, exit codes and output: one-line errors (JSON with `--json`), colour only on a
//! terminal (and never with `NO_COLOR`).

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::{EXIT_INVALID, EXIT_LOCAL, EXIT_NODE, EXIT_USAGE};

/// A failed command: a one-line message, a stable code and an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Malformed input or a bad argument (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Input that is well formed but does not verify (exit 1).
    #[error("{message}")]
    Invalid {
        /// The stable code, e.g. `ENVELOPE_BAD_SIGNATURE`.
        code: String,
        /// What failed.
        message: String,
    },
    /// A request that breaks a rule the node enforces, refused before it was sent, with the
    /// node's code (exit 3, as the node's own refusal would be).
    #[error("{message}")]
    Refused {
        /// The node's stable code, e.g. `EVIDENCE_SELF`.
        code: String,
        /// What was refused.
        message: String,
    },
    /// An error from the SDK; its kind picks the exit code.
    #[error("{0}")]
    Sdk(#[from] atp::Error),
    /// The identity provider refused the sign-in, failed, or could not be reached (exit 3).
    #[error("{message}")]
    Login {
        /// The stable code, e.g. `LOGIN_DENIED`.
        code: &'static str,
        /// What failed (never a token).
        message: String,
    },
    /// The stored login in `$ATP_HOME/credentials` cannot be used (exit 4).
    #[error("{message}")]
    Credentials {
        /// The stable code, e.g. `CREDENTIALS_INSECURE`.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written (exit 4).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl CliError {
    /// The process exit code (docs/cli.md).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Invalid { .. } => EXIT_INVALID,
            CliError::Refused { .. } => EXIT_NODE,
            CliError::Io { .. } => EXIT_LOCAL,
            // A stored login that has to be renewed is local state, like a stale key file.
            CliError::Login { code: "LOGIN_REQUIRED", .. } => EXIT_LOCAL,
            CliError::Login { .. } => EXIT_NODE,
            CliError::Credentials { .. } => EXIT_LOCAL,
            CliError::Sdk(e) => match e {
                atp::Error::NodeUnreachable { .. }
                | atp::Error::Rejected { .. }
                | atp::Error::NodeMisbehaved { .. }
                | atp::Error::LogInconsistent(_) => EXIT_NODE,
                atp::Error::Home { .. } | atp::Error::Deactivated { .. } => EXIT_LOCAL,
                atp::Error::Protocol(_) | atp::Error::Crypto(_) | atp::Error::AuditTampered(_) => {
                    EXIT_INVALID
                }
                _ => EXIT_USAGE,
            },
        }
    }

    /// A stable UPPER_SNAKE_CASE code.
    pub fn code(&self) -> String {
        match self {
            CliError::Usage(_) => "USAGE".into(),
            CliError::Invalid { code, .. } | CliError::Refused { code, .. } => code.clone(),
            CliError::Io { .. } => "IO".into(),
            CliError::Login { code, .. } | CliError::Credentials { code, .. } => (*code).into(),
            CliError::Sdk(e) => e.code().to_owned(),
        }
    }
}

/// Prints `e` on stderr as one line: `atp: error: …` (red on a terminal), or a JSON object with
/// `--json`.
pub fn report(e: &CliError, json: bool) {
    // Messages from deep layers may hold newlines; an error stays one line.
    let message = e.to_string().replace(['\n', '\r'], " ");
    let mut err = std::io::stderr().lock();
    if json {
        let v = serde_json::json!({"error": {"code": e.code(), "message": message, "exitCode": e.exit_code()}});
        let _ = writeln!(err, "{v}");
    } else {
        let _ = writeln!(err, "atp: {}: {message} [{}]", paint("error", Colour::Red), e.code());
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Colour {
    Red,
    Green,
}

/// Colour only when stderr is a terminal and `NO_COLOR` is unset.
pub(crate) fn paint(text: &str, colour: Colour) -> String {
    let on = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    if !on {
        return text.to_owned();
    }
    let code = match colour {
        Colour::Red => "31",
        Colour::Green => "32",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A note for humans on stderr (never with `--json`, which keeps stdout machine-readable).
pub(crate) fn note(json: bool, text: &str) {
    if !json {
        eprintln!("{text}");
    }
}

/// The most a file or stdin argument may hold (an envelope is at most ~1 MiB; credentials
/// 1 MiB; messages to seal 1 MiB).
pub(crate) const MAX_INPUT_BYTES: u64 = 4 << 20;

/// Reads a file, or stdin for `None` / `-`, bounded.
pub(crate) fn read_input(path: Option<&Path>) -> Result<Vec<u8>, CliError> {
    let mut buf = Vec::new();
    let (result, shown) = match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => (f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut buf), p.to_path_buf()),
            Err(source) => return Err(CliError::Io { path: p.to_path_buf(), source }),
        },
        None => (
            std::io::stdin().lock().take(MAX_INPUT_BYTES + 1).read_to_end(&mut buf),
            PathBuf::from("<stdin>"),
        ),
    };
    result.map_err(|source| CliError::Io { path: shown.clone(), source })?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(CliError::Usage(format!(
            "{}: larger than {MAX_INPUT_BYTES} bytes",
            shown.display()
        )));
    }
    Ok(buf)
}

/// Reads a JSON document from a file or stdin.
pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value, CliError> {
    let bytes = read_input(Some(path))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| CliError::Usage(format!("{}: not valid JSON: {e}", path.display())))
}

/// Writes bytes to a file, or stdout for `None` / `-`. Binary output is refused on a terminal.
pub(crate) fn write_output(
    path: Option<&Path>,
    bytes: &[u8],
    binary: bool,
) -> Result<(), CliError> {
    match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => {
            std::fs::write(p, bytes).map_err(|source| CliError::Io { path: p.into(), source })
        }
        None => {
            let mut out = std::io::stdout().lock();
            if binary && out.is_terminal() {
                return Err(CliError::Usage(
                    "refusing to write a binary envelope to a terminal: use --out FILE or a redirect".into(),
                ));
            }
            out.write_all(bytes)
                .and_then(|()| out.flush())
                .map_err(|source| CliError::Io { path: "<stdout>".into(), source })
        }
    }
}

/// Prints one JSON value on stdout.
pub(crate) fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// A spinner on stderr for a long operation; hidden when stderr is not a terminal.
pub(crate) fn spinner(message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_view_exits_as_a_node_refusal() {
        let evidence =
            atp::core::log_evidence::LogEvidence::new("did:atp:x", vec![], "a", "b", None, "t");
        let e = CliError::Sdk(atp::Error::LogInconsistent(Box::new(evidence)));
        assert_eq!((e.exit_code(), e.code().as_str()), (crate::EXIT_NODE, "NODE_MISBEHAVED"));
        let plain = CliError::Sdk(atp::Error::InvalidArgument("x".into()));
        assert_ne!(plain.exit_code(), crate::EXIT_NODE);
    }
}
