//! Every constant of the trust model, with its documented default (docs/trust.md repeats them).

use crate::TrustError;

const DAY_MS: i64 = 86_400_000;

/// The constants of the trust model. [`TrustConfig::default`] gives the documented defaults;
/// [`TrustConfig::validate`] checks the ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct TrustConfig {
    /// Probability of following an evidence edge rather than restarting at the anchors (the
    /// PageRank damping factor `d`). Default 0.85. Range (0, 1).
    pub damping: f64,
    /// Most power-iteration rounds. Default 100.
    pub max_iterations: u32,
    /// Stop when the L1 change of the score vector falls below this. Default 1e-10.
    pub tolerance: f64,
    /// Half-life of the exponential time decay of signed evidence, in milliseconds: evidence
    /// that is one half-life old weighs half as much. Default 180 days.
    pub half_life_ms: i64,
    /// Weight of an endorsement. Default 1.0.
    pub endorsement_weight: f64,
    /// Weight of one interaction receipt (success: positive; failure: negative). Default 0.2,
    /// so five successful interactions weigh as much as one endorsement.
    pub receipt_weight: f64,
    /// Weight of a valid credential from its issuer (credentials do not decay; they count until
    /// they expire or are revoked). Default 2.0.
    pub credential_weight: f64,
    /// Weight of an incident report by severity (low, medium, high). Default [0.5, 1.0, 2.0].
    pub incident_weights: [f64; 3],
    /// Negative evidence (failed receipts, incidents) is multiplied by this before it is set
    /// against positive evidence. Default 3.0. At least 1.
    pub negative_multiplier: f64,
    /// The "prior" out-weight of every issuer: an issuer's trust is shared among its evidence
    /// weights plus this amount, whose share returns to the anchors. It makes absolute weights
    /// (and therefore time decay) matter: an issuer that has said little passes on little.
    /// Default 1.0.
    pub issuer_prior_weight: f64,
    /// The normalisation constant `k`: with `x` the raw score in units of one anchor's restart
    /// mass, the score is `x / (x + k)`. Default 0.5.
    pub score_half_units: f64,
    /// The lowest scores of levels 1 (BASIC), 2 (VERIFIED), 3 (TRUSTED) and 4 (PRIVILEGED).
    /// Default [0.05, 0.25, 0.5, 0.8]. Strictly increasing, in (0, 1).
    pub level_thresholds: [f64; 4],
    /// How long an incident report stays open, in milliseconds. Default 90 days.
    pub incident_open_ms: i64,
    /// A high-severity incident caps the subject's level only if its reporter is an anchor or
    /// reached at least this level before the gates. Default 1 (BASIC), so that reports from
    /// untrusted DIDs (Sybils) cannot cap anyone.
    pub incident_reporter_min_level: u8,
    /// Longest evidence path that ExplainTrust reports. Default 4.
    pub explain_max_depth: usize,
    /// Most search steps ExplainTrust takes per request. Default 20,000.
    pub explain_max_steps: usize,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            damping: 0.85,
            max_iterations: 100,
            tolerance: 1e-10,
            half_life_ms: 180 * DAY_MS,
            endorsement_weight: 1.0,
            receipt_weight: 0.2,
            credential_weight: 2.0,
            incident_weights: [0.5, 1.0, 2.0],
            negative_multiplier: 3.0,
            issuer_prior_weight: 1.0,
            score_half_units: 0.5,
            level_thresholds: [0.05, 0.25, 0.5, 0.8],
            incident_open_ms: 90 * DAY_MS,
            incident_reporter_min_level: 1,
            explain_max_depth: 4,
            explain_max_steps: 20_000,
        }
    }
}

fn bad(why: impl Into<String>) -> TrustError {
    TrustError::InvalidConfig(why.into())
}

fn positive(name: &str, v: f64) -> Result<(), TrustError> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { Err(bad(format!("{name} must be > 0"))) }
}

impl TrustConfig {
    /// Check every range.
    pub fn validate(&self) -> Result<(), TrustError> {
        if !(self.damping > 0.0 && self.damping < 1.0) {
            return Err(bad("damping must be in (0, 1)"));
        }
        if self.max_iterations == 0 || self.max_iterations > 10_000 {
            return Err(bad("max_iterations must be 1 to 10000"));
        }
        positive("tolerance", self.tolerance)?;
        if self.half_life_ms <= 0 {
            return Err(bad("half_life_ms must be > 0"));
        }
        positive("endorsement_weight", self.endorsement_weight)?;
        positive("receipt_weight", self.receipt_weight)?;
        positive("credential_weight", self.credential_weight)?;
        for w in self.incident_weights {
            positive("incident_weights", w)?;
        }
        if !(self.negative_multiplier.is_finite() && self.negative_multiplier >= 1.0) {
            return Err(bad("negative_multiplier must be >= 1 (negative evidence weighs more)"));
        }
        if !(self.issuer_prior_weight.is_finite() && self.issuer_prior_weight >= 0.0) {
            return Err(bad("issuer_prior_weight must be >= 0"));
        }
        positive("score_half_units", self.score_half_units)?;
        let t = self.level_thresholds;
        let increasing = t.windows(2).all(|w| w[0] < w[1]);
        if !(increasing && t[0] > 0.0 && t[3] < 1.0) {
            return Err(bad("level_thresholds must increase strictly within (0, 1)"));
        }
        if self.incident_open_ms <= 0 {
            return Err(bad("incident_open_ms must be > 0"));
        }
        if self.incident_reporter_min_level > 4 {
            return Err(bad("incident_reporter_min_level must be 0 to 4"));
        }
        if self.explain_max_depth == 0 || self.explain_max_depth > 16 {
            return Err(bad("explain_max_depth must be 1 to 16"));
        }
        if self.explain_max_steps == 0 || self.explain_max_steps > 1_000_000 {
            return Err(bad("explain_max_steps must be 1 to 1000000"));
        }
        Ok(())
    }

    /// The level (0 to 4) of a score, before the gates.
    pub fn level_of(&self, score: f64) -> u8 {
        self.level_thresholds.iter().filter(|t| score >= **t).count() as u8
    }
}
