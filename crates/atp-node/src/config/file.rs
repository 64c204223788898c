//! The configuration file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{
    ENTERPRISE_SECTIONS, LogFormat, TrustSettings, UNAVAILABLE_ENTERPRISE_SECTIONS, parse_duration,
};
use crate::NodeError;
use atp_server::Limits;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) data_dir: Option<PathBuf>,
    pub(super) listen: Option<SocketAddr>,
    pub(super) public_url: Option<String>,
    pub(super) insecure_plaintext: Option<bool>,
    pub(super) checkpoint_interval: Option<DurationValue>,
    pub(super) log_origin: Option<String>,
    pub(super) tls: FileTls,
    pub(super) log: FileLog,
    /// `[limits]` as written; [`read_file`] reads it into [`FileConfig::limits`].
    #[serde(rename = "limits")]
    pub(super) limits_table: toml::Table,
    pub(super) trust: FileTrust,
    /// `[[witness]]`: the witnesses asked to cosign each checkpoint.
    #[serde(rename = "witness")]
    pub(super) witnesses: Vec<FileWitness>,
    /// The defaults with `[limits]` applied. Filled by [`read_file`], never by serde.
    #[serde(skip)]
    pub(super) limits: Limits,
    /// Filled by [`read_file`], never by serde.
    #[serde(skip)]
    pub(super) enterprise: std::collections::BTreeMap<String, toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileTls {
    pub(super) cert: Option<PathBuf>,
    pub(super) key: Option<PathBuf>,
    pub(super) self_signed: Option<bool>,
    pub(super) require_pq: Option<bool>,
    pub(super) client_ca: Option<PathBuf>,
}

/// One `[[witness]]`: its URL and the two cosigner verifier keys it prints at start.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileWitness {
    pub(super) url: String,
    pub(super) ed25519: String,
    pub(super) mldsa65: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileLog {
    pub(super) format: Option<LogFormat>,
    pub(super) filter: Option<String>,
}

/// `[trust]`: every field optional; durations are strings with a unit ("180d" is not a unit:
/// write "4320h").
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct FileTrust {
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
    pub(super) fn merge(self) -> TrustSettings {
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
pub(super) struct DurationValue(pub(super) Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(DurationValue).map_err(serde::de::Error::custom)
    }
}

/// Read and parse the configuration file. Relative paths in it are resolved against its
/// directory.
pub(super) fn read_file(path: &Path) -> Result<FileConfig, NodeError> {
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
    file.limits = read_limits(std::mem::take(&mut file.limits_table))
        .map_err(|reason| NodeError::ConfigParse { path: path.to_owned(), reason })?;
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

/// The defaults with the file's `[limits]` applied. A count is an integer; a size or a duration
/// is an integer or a string with a unit, read as on the command line.
fn read_limits(table: toml::Table) -> Result<Limits, String> {
    let mut limits = Limits::default();
    for (key, value) in table {
        let Some(spec) = Limits::SPECS.iter().find(|spec| spec.key == key) else {
            let known: Vec<_> = Limits::SPECS.iter().map(|spec| spec.key).collect();
            return Err(format!(
                "unknown field `{key}` in [limits], expected one of {}",
                known.join(", ")
            ));
        };
        let text = match value {
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::String(text) if spec.text => text,
            other => {
                let expected = if spec.text { "an integer or a string" } else { "an integer" };
                return Err(format!(
                    "limits.{key}: expected {expected}, found {}",
                    other.type_str()
                ));
            }
        };
        limits.set(&key, &text).map_err(|reason| format!("limits.{key}: {reason}"))?;
    }
    Ok(limits)
}
