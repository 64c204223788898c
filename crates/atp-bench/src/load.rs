//! Offering load: closed loop and open loop, with a warm-up, over one or many endpoints.
//!
//! Open loop follows a fixed schedule: request `i` is *intended* to leave at
//! `start + i / rate`, and its latency is measured from that instant, not from when it actually
//! left. When the node (or the load generator) stalls, the requests that should have gone out in
//! the meantime are still sent, late, and carry the stall in their latency: coordinated omission
//! cannot hide it. The dispatcher wakes on the runtime's timer (1 ms granularity) and sends every
//! request that is due, so up to about 1 ms of scheduling delay is included in the figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use crate::BenchError;
use crate::report::{Mode, Recorder, Report, error_label};
use crate::scenario::Workload;

/// How load is offered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoadMode {
    /// `concurrency` callers; each sends its next request when the previous one is answered.
    Closed {
        /// Concurrent callers.
        concurrency: usize,
    },
    /// `rate` requests per second on a fixed schedule.
    Open {
        /// Requests per second.
        rate: f64,
        /// Most requests in flight at once; beyond it the dispatcher waits (and the wait is
        /// part of the latency of the requests that are late because of it).
        max_in_flight: usize,
    },
}

/// One load run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// How load is offered.
    pub mode: LoadMode,
    /// Time under load before measuring starts.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// Largest accepted open-loop rate, requests per second.
const MAX_RATE: f64 = 10_000_000.0;

/// Connect `connections_per_endpoint` HTTP/2 connections to each endpoint (`http://host:port`).
pub async fn connect(
    endpoints: &[String],
    connections_per_endpoint: usize,
) -> Result<Vec<Channel>, BenchError> {
    if endpoints.is_empty() {
        return Err(BenchError::Invalid("at least one endpoint is needed".into()));
    }
    let mut channels = Vec::new();
    for endpoint in endpoints {
        let connect_error =
            |reason: String| BenchError::Connect { endpoint: endpoint.clone(), reason };
        let ep = Endpoint::from_shared(endpoint.clone())
            .map_err(|e| connect_error(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        for _ in 0..connections_per_endpoint.max(1) {
            channels.push(ep.connect().await.map_err(|e| connect_error(e.to_string()))?);
        }
    }
    Ok(channels)
}

/// Run `workload` against `channels` (spread round-robin) as `config` says, and report on the
/// measured window.
pub async fn run_load(
    workload: &Workload,
    channels: &[Channel],
    config: &LoadConfig,
) -> Result<Report, BenchError> {
    if channels.is_empty() {
        return Err(BenchError::Invalid("no connection to send on".into()));
    }
    let (recorder, mode, elapsed, exhausted) = match config.mode {
        LoadMode::Closed { concurrency } => {
            if concurrency == 0 {
                return Err(BenchError::Invalid("concurrency must be at least 1".into()));
            }
            closed_loop(workload, channels, config, concurrency).await?
        }
        LoadMode::Open { rate, max_in_flight } => {
            if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
                return Err(BenchError::Invalid(format!("rate must be in (0, {MAX_RATE}]")));
            }
            open_loop(workload, channels, config, rate, max_in_flight.max(1)).await?
        }
    };
    let mut report = recorder.report(workload.scenario().name(), mode, elapsed);
    report.notes.extend(workload.notes().iter().cloned());
    if exhausted {
        report.notes.push(format!(
            "the prepared pool ran out after {:.2} s of the {:.2} s window: raise --pool",
            elapsed.as_secs_f64(),
            config.duration.as_secs_f64()
        ));
    }
    Ok(report)
}

type Outcome = (Recorder, Mode, Duration, bool);

async fn closed_loop(
    workload: &Workload,
    channels: &[Channel],
    config: &LoadConfig,
    concurrency: usize,
) -> Result<Outcome, BenchError> {
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let next = Arc::new(AtomicU64::new(0));
    let exhausted_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let mut tasks = Vec::with_capacity(concurrency);
    for caller in 0..concurrency {
        let workload = workload.clone();
        let channel = channels[caller % channels.len()].clone();
        let next = next.clone();
        let exhausted_at = exhausted_at.clone();
        let mut recorder = Recorder::new()?;
        tasks.push(tokio::spawn(async move {
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(result) = workload.call(&channel, i).await else {
                    let mut at = exhausted_at.lock().unwrap_or_else(|p| p.into_inner());
                    at.get_or_insert(sent);
                    break;
                };
                let done = Instant::now();
                if sent < measure_from || done > end {
                    continue;
                }
                match result {
                    Ok(()) => recorder.success(done - sent),
                    Err(status) => recorder.failure(error_label(&status)),
                }
            }
            recorder
        }));
    }
    let mut total = Recorder::new()?;
    for task in tasks {
        let recorder =
            task.await.map_err(|e| BenchError::Setup(format!("a caller task failed: {e}")))?;
        total.merge(&recorder)?;
    }
    let exhausted = *exhausted_at.lock().unwrap_or_else(|p| p.into_inner());
    let window_end = exhausted.map_or(end, |at| at.min(end));
    let elapsed = window_end.saturating_duration_since(measure_from);
    if exhausted.is_some() && elapsed.is_zero() {
        return Err(BenchError::Invalid(
            "the prepared pool ran out during the warm-up: raise --pool".into(),
        ));
    }
    Ok((total, Mode::ClosedLoop { concurrency }, elapsed, exhausted.is_some_and(|at| at < end)))
}

async fn open_loop(
    workload: &Workload,
    channels: &[Channel],
    config: &LoadConfig,
    rate: f64,
    max_in_flight: usize,
) -> Result<Outcome, BenchError> {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let recorder = Arc::new(std::sync::Mutex::new(Recorder::new()?));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let exhausted = Arc::new(AtomicBool::new(false));
    let mut exhausted_at = None;
    let mut i: u64 = 0;
    'schedule: loop {
        let intended = start + interval.mul_f64(i as f64);
        if intended >= end {
            break;
        }
        if exhausted.load(Ordering::Relaxed) {
            exhausted_at = Some(intended);
            break;
        }
        tokio::time::sleep_until(intended).await;
        // Send everything that is due now: the timer wakes at most once per millisecond.
        let now = Instant::now();
        loop {
            let intended = start + interval.mul_f64(i as f64);
            if intended > now {
                break;
            }
            if intended >= end {
                break 'schedule;
            }
            if workload.capacity().is_some_and(|cap| i as usize >= cap) {
                exhausted_at = Some(intended);
                break 'schedule;
            }
            let permit = in_flight
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| BenchError::Setup(format!("in-flight limit: {e}")))?;
            let workload = workload.clone();
            let channel = channels[(i as usize) % channels.len()].clone();
            let recorder = recorder.clone();
            let exhausted = exhausted.clone();
            let index = i;
            tokio::spawn(async move {
                let _permit = permit;
                let outcome = workload.call(&channel, index).await;
                let done = Instant::now();
                let Some(result) = outcome else {
                    exhausted.store(true, Ordering::Relaxed);
                    return;
                };
                if intended < measure_from {
                    return;
                }
                let mut recorder = recorder.lock().unwrap_or_else(|p| p.into_inner());
                match result {
                    Ok(()) => recorder.success(done - intended),
                    Err(status) => recorder.failure(error_label(&status)),
                }
            });
            i += 1;
        }
    }
    // Wait for every request in flight to be answered.
    let _all = in_flight
        .acquire_many(u32::try_from(max_in_flight).unwrap_or(u32::MAX))
        .await
        .map_err(|e| BenchError::Setup(format!("in-flight limit: {e}")))?;
    let window_end = exhausted_at.map_or(end, |at: Instant| at.min(end));
    let elapsed = window_end.saturating_duration_since(measure_from);
    if exhausted_at.is_some() && elapsed.is_zero() {
        return Err(BenchError::Invalid(
            "the prepared pool ran out during the warm-up: raise --pool".into(),
        ));
    }
    let total = recorder.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok((total, Mode::OpenLoop { rate }, elapsed, exhausted_at.is_some()))
}
