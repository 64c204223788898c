//! `atp-bench`: the ATP node's load generator, and in-process measurements of the same work.
//!
//! - [`load`]: offers load to one or many node endpoints over gRPC, closed loop (N concurrent
//!   callers) or open loop (a fixed schedule; latency counted from the *intended* send time,
//!   so a stalled node cannot hide behind coordinated omission), with a warm-up and a duration.
//! - [`scenario`]: what each request does (`verify-envelope`, `submit-inception`, `resolve`
//!   cached or uncached, `get-trust`, `issue-credential`, `verify-credential`) and the work
//!   prepared before the clock starts (registered agents, pre-signed envelopes, fresh inception
//!   events).
//! - [`report`]: an HdrHistogram of latencies (p50, p90, p99, p99.9, max), throughput and
//!   errors by gRPC code and reason, printed for people or as JSON.
//! - [`raw`]: the physical limit: the same cryptographic work in-process on all cores, so that
//!   a node figure can be given as a ratio to it from the same run.
//! - [`populate`]: fills a node with N identities through many concurrent `SubmitEvent`s (the
//!   node's group commit batches them), for scale runs.
//! - [`process`]: the resident memory of a process (the node), read from `/proc`.
//! - [`replay_cache`]: insertion latency and memory per entry of the replay cache while it fills
//!   to N entries, for the cache in use and, in the same run, the two designs it replaced.
//!
//! The binary (`src/main.rs`) only parses arguments and prints.
#![forbid(unsafe_code)]

pub mod load;
pub mod populate;
pub mod process;
pub mod raw;
pub mod replay_cache;
pub mod report;
pub mod scenario;

pub use load::{LoadConfig, LoadMode, run_load};
pub use report::{Mode, Percentiles, Recorder, Report};
pub use scenario::{Scenario, ScenarioOptions, Workload};

/// Everything that can go wrong in a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A node endpoint could not be reached.
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// Preparing the workload failed (registering agents, signing, reading a file, ...).
    #[error("setup failed: {0}")]
    Setup(String),
    /// The node refused a setup call.
    #[error("the node refused {call}: {status}")]
    Node {
        /// The RPC.
        call: &'static str,
        /// The node's answer.
        status: Box<tonic::Status>,
    },
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A protocol-level operation failed while preparing requests.
    #[error(transparent)]
    Core(#[from] atp_core::CoreError),
    /// A cryptographic operation failed while preparing requests.
    #[error(transparent)]
    Crypto(#[from] atp_crypto::CryptoError),
}

impl BenchError {
    fn node(call: &'static str, status: tonic::Status) -> Self {
        BenchError::Node { call, status: Box::new(status) }
    }
}

/// Unix time in milliseconds, from the system clock.
pub fn now_unix_ms() -> i64 {
    let since =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
