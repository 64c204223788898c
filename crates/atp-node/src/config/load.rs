//! Loading: flags over the environment over the file over the defaults.

use std::collections::HashMap;
use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches};

use super::cli::{Cli, limit_args};
use super::file::{FileConfig, read_file};
use super::{
    EnterpriseSections, KEY_PASSPHRASE_ENV, LogConfig, NodeConfig, OTHER_ATP_VARS, Passphrase,
    TlsConfig, clap_reason, limit_option,
};
use crate::NodeError;
use atp_server::Limits;

impl NodeConfig {
    /// The `clap` command: what `atp-node --help` prints, with every flag and its `ATP_*`
    /// variable. (Environment values are not shown in the help.)
    pub fn command() -> clap::Command {
        Cli::command().args(limit_args()).mut_args(|a| a.hide_env_values(true))
    }

    /// The command used for parsing: without clap's own environment lookup (clap reads the
    /// process environment; [`NodeConfig::load`] takes the environment as an argument), and with
    /// a later occurrence of a flag overriding an earlier one (environment values are placed
    /// before the real arguments).
    fn parse_command() -> clap::Command {
        Cli::command().args(limit_args()).args_override_self(true).mut_args(|a| a.env(None::<&str>))
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

        // 4. The limits: the file's (over the defaults), then each flag or variable given.
        let mut limits = file.limits;
        for spec in Limits::SPECS {
            if let Some(text) = matches.get_one::<String>(spec.key) {
                limits.set(spec.key, text).map_err(|reason| NodeError::InvalidConfig {
                    option: limit_option(spec.key),
                    reason,
                })?;
            }
        }

        // 5. Everything else: the flag or variable, else the file, else the default.
        let d = NodeConfig::default();
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
            limits,
            checkpoint_interval: cli
                .checkpoint_interval
                .or(file.checkpoint_interval.map(|v| v.0))
                .unwrap_or(d.checkpoint_interval),
            log_origin: cli.log_origin.or(file.log_origin),
            key_passphrase,
            unknown_env,
            trust: file.trust.merge(),
            enterprise: EnterpriseSections(file.enterprise),
            witnesses: witness_targets(file.witnesses)?,
        };
        config.validate()?;
        Ok(config)
    }
}

/// `[[witness]]` entries as the server's targets: the URL and both keys checked here, so that a
/// typo stops the node at start instead of failing every round.
fn witness_targets(
    witnesses: Vec<super::file::FileWitness>,
) -> Result<Vec<atp_server::witnesses::WitnessTarget>, NodeError> {
    let invalid = |reason: String| NodeError::InvalidConfig { option: "witness".into(), reason };
    if witnesses.len() > atp_server::witnesses::MAX_WITNESSES {
        return Err(invalid(format!("at most {} witnesses", atp_server::witnesses::MAX_WITNESSES)));
    }
    witnesses
        .into_iter()
        .map(|w| {
            let cosigner = atp_core::witness::CosignerKey::from_vkeys(&w.ed25519, &w.mldsa65)
                .map_err(|e| invalid(format!("{}: {e}", w.url)))?;
            atp_server::witnesses::WitnessTarget::new(&w.url, cosigner)
                .map_err(|e| invalid(e.to_string()))
        })
        .collect()
}
