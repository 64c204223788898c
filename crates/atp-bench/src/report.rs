//! Latency recording and the run report.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::BenchError;

/// Highest latency the histogram tracks: one minute, in microseconds. Slower calls are clamped to
/// it (and still counted).
const MAX_TRACKED_MICROS: u64 = 60_000_000;
/// Three significant digits: 0.1 % resolution at every scale.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies (microseconds) of successful calls and the failures by gRPC code and reason.
#[derive(Clone, Debug)]
pub struct Recorder {
    latencies: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Result<Self, BenchError> {
        let latencies = Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, SIGNIFICANT_DIGITS)
            .map_err(|e| BenchError::Setup(format!("histogram bounds: {e}")))?;
        Ok(Recorder { latencies, errors: BTreeMap::new() })
    }

    /// Record one successful call.
    pub fn success(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies.saturating_record(micros.clamp(1, MAX_TRACKED_MICROS));
    }

    /// Record one failed call under `label` (see [`error_label`]).
    pub fn failure(&mut self, label: String) {
        *self.errors.entry(label).or_default() += 1;
    }

    /// Add everything `other` recorded.
    pub fn merge(&mut self, other: &Recorder) -> Result<(), BenchError> {
        self.latencies
            .add(&other.latencies)
            .map_err(|e| BenchError::Setup(format!("merging histograms: {e}")))?;
        for (label, count) in &other.errors {
            *self.errors.entry(label.clone()).or_default() += count;
        }
        Ok(())
    }

    /// Successful calls recorded.
    pub fn successes(&self) -> u64 {
        self.latencies.len()
    }

    /// The report of a window of `elapsed`.
    pub fn report(&self, scenario: &str, mode: Mode, elapsed: Duration) -> Report {
        let q = |quantile: f64| self.latencies.value_at_quantile(quantile);
        let secs = elapsed.as_secs_f64();
        let successes = self.successes();
        let errors: u64 = self.errors.values().sum();
        Report {
            scenario: scenario.to_owned(),
            mode,
            duration_s: secs,
            successes,
            errors,
            errors_by_code: self.errors.clone(),
            throughput_per_s: if secs > 0.0 { successes as f64 / secs } else { 0.0 },
            latency_us: Percentiles {
                p50: q(0.50),
                p90: q(0.90),
                p99: q(0.99),
                p999: q(0.999),
                max: self.latencies.max(),
                mean: self.latencies.mean(),
            },
            notes: Vec::new(),
        }
    }
}

/// `CODE` or `CODE/REASON` for a failed call: the gRPC code and, when the node sent one, the
/// stable reason of its `ErrorInfo`.
pub fn error_label(status: &tonic::Status) -> String {
    match atp_grpc::status::reason(status) {
        Some(reason) => format!("{:?}/{reason}", status.code()),
        None => format!("{:?}", status.code()),
    }
}

/// How load was offered.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Mode {
    /// `concurrency` callers, each sending its next request when the previous one is answered.
    ClosedLoop {
        /// Concurrent callers.
        concurrency: usize,
    },
    /// A fixed schedule of `rate` requests per second; latency counts from the intended send
    /// time.
    OpenLoop {
        /// Requests per second.
        rate: f64,
    },
}

/// Latency percentiles of successful calls, in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

/// The result of one load run: what `atp-bench run` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// How load was offered.
    pub mode: Mode,
    /// The measured window (after warm-up), in seconds.
    pub duration_s: f64,
    /// Successful calls in the window.
    pub successes: u64,
    /// Failed calls in the window.
    pub errors: u64,
    /// Failed calls by `CODE` or `CODE/REASON`.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Successful calls per second.
    pub throughput_per_s: f64,
    /// Latency of successful calls.
    pub latency_us: Percentiles,
    /// Remarks on the run (pool exhausted early, cache hit ratio, ...).
    pub notes: Vec<String>,
}

impl Report {
    /// Whether the percentiles are in order (p50 <= p90 <= p99 <= p99.9 <= max).
    pub fn percentiles_ordered(&self) -> bool {
        let l = &self.latency_us;
        l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max
    }
}

fn ms(micros: u64) -> String {
    format!("{:.3} ms", micros as f64 / 1000.0)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::ClosedLoop { concurrency } => format!("closed loop, {concurrency} callers"),
            Mode::OpenLoop { rate } => format!("open loop, {rate} req/s offered"),
        };
        writeln!(f, "scenario:   {} ({mode})", self.scenario)?;
        writeln!(f, "window:     {:.2} s", self.duration_s)?;
        writeln!(f, "throughput: {:.1} req/s", self.throughput_per_s)?;
        writeln!(f, "successes:  {}", self.successes)?;
        writeln!(f, "errors:     {}", self.errors)?;
        for (label, count) in &self.errors_by_code {
            writeln!(f, "  {label}: {count}")?;
        }
        let l = &self.latency_us;
        writeln!(f, "latency:    p50 {}  p90 {}  p99 {}", ms(l.p50), ms(l.p90), ms(l.p99))?;
        writeln!(
            f,
            "            p99.9 {}  max {}  mean {:.3} ms",
            ms(l.p999),
            ms(l.max),
            l.mean / 1000.0
        )?;
        for note in &self.notes {
            writeln!(f, "note:       {note}")?;
        }
        Ok(())
    }
}
