//! The physical limit: the node's cryptographic work done in-process, with no network, no
//! store and no serialisation, on `threads` threads at once.
//!
//! A node figure divided by the matching raw figure of the same run is the fraction of the
//! machine's limit the node reaches (`VerifyEnvelope` against [`RawOperation::EnvelopeVerify`]
//! and [`RawOperation::CompositeVerify`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use atp_core::CoreError;
use atp_core::envelope::{self, Envelope, KeyValidity, SealedEnvelope, VerifyContext};
use atp_crypto::{AlgorithmId, SigningContext, SigningKey};
use serde::Serialize;

use crate::{BenchError, now_unix_ms};

/// Sender DID of the raw envelopes (any syntactically valid DID).
const RAW_SENDER: &str = "did:example:atp-bench-sender";
/// Recipient of the raw envelopes.
const RAW_VERIFIER: &str = "did:example:atp-bench-verifier";
/// Payload of the raw envelopes: the same size as the node scenario's.
const RAW_PAYLOAD_BYTES: usize = 256;
/// Envelopes signed ahead for `envelope-verify`. Each thread cycles through them with a replay
/// cache of its own, emptied when it starts the pool again, so no envelope counts as a replay.
const ENVELOPE_POOL: usize = 2048;

/// An in-process operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RawOperation {
    /// Composite ML-DSA-65 + Ed25519 signature of a 256-byte message.
    CompositeSign,
    /// Composite ML-DSA-65 + Ed25519 verification of a 256-byte message (key parsed once).
    CompositeVerify,
    /// The full `atp-core` envelope verification of wire bytes: decode, structure, time,
    /// audience, key lookup in a map, composite signature, replay cache. The same work as
    /// `VerifyEnvelope` without gRPC and without the store.
    EnvelopeVerify,
}

impl RawOperation {
    /// The operation's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            RawOperation::CompositeSign => "composite-sign",
            RawOperation::CompositeVerify => "composite-verify",
            RawOperation::EnvelopeVerify => "envelope-verify",
        }
    }
}

/// The result of one raw measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RawReport {
    /// The operation.
    pub operation: RawOperation,
    /// Threads that ran it at once.
    pub threads: usize,
    /// Operations completed in the window.
    pub operations: u64,
    /// The measured window, in seconds.
    pub duration_s: f64,
    /// Operations per second, all threads together.
    pub throughput_per_s: f64,
    /// Mean time of one operation on one thread, in microseconds.
    pub mean_us: f64,
    /// CPU time the measuring threads got in the window, in seconds (Linux scheduler
    /// statistics; `None` where unavailable). On a shared machine this is what the operations
    /// really cost: wall-clock figures also count the time other processes held the cores.
    pub cpu_time_s: Option<f64>,
    /// Operations per CPU-second of the measuring threads (`operations / cpu_time_s`).
    pub per_cpu_second: Option<f64>,
}

impl std::fmt::Display for RawReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<17} {} thread(s): {:>10.1} ops/s  ({:.1} µs per op per thread, {} ops in {:.2} s)",
            self.operation.name(),
            self.threads,
            self.throughput_per_s,
            self.mean_us,
            self.operations,
            self.duration_s
        )?;
        if let (Some(cpu), Some(per_cpu)) = (self.cpu_time_s, self.per_cpu_second) {
            write!(f, "; {per_cpu:.1} ops per CPU-second ({cpu:.2} CPU-s)")?;
        }
        Ok(())
    }
}

/// Run `operation` on `threads` threads for `warmup + duration`, counting operations completed
/// in the last `duration`.
pub fn measure(
    operation: RawOperation,
    threads: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<RawReport, BenchError> {
    if threads == 0 {
        return Err(BenchError::Invalid("threads must be at least 1".into()));
    }
    let key = SigningKey::generate(AlgorithmId::MlDsa65Ed25519)?;
    let public = key.public_key();
    let message = vec![0x5a_u8; RAW_PAYLOAD_BYTES];
    let ctx = SigningContext::Envelope.as_bytes();
    let signature = key.sign(&message, ctx)?;
    let pool = match operation {
        RawOperation::EnvelopeVerify => envelope_pool(&key)?,
        _ => Vec::new(),
    };
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + warmup;
    let end = measure_from + duration;

    let counts: Vec<Result<(u64, Option<u64>), BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (key, public, message, signature) = (&key, &public, &message, &signature);
                let pool = &pool;
                scope.spawn(move || -> Result<(u64, Option<u64>), BenchError> {
                    let mut next_envelope = 0usize;
                    let keys: HashMap<&str, KeyValidity> = HashMap::from([(
                        RAW_SENDER,
                        KeyValidity { key: public.clone(), valid_from: 0, valid_until: None },
                    )]);
                    let lookup = |did: &str, seq: u64| {
                        keys.get(did).filter(|_| seq == 0).cloned().ok_or_else(|| {
                            CoreError::EnvelopeUnknownSender { did: did.to_owned(), seq }
                        })
                    };
                    let mut replay = envelope::InMemoryReplayCache::new(ENVELOPE_POOL);
                    while Instant::now() < start {
                        std::hint::spin_loop();
                    }
                    let mut counted = 0u64;
                    let mut cpu_at_start = None;
                    loop {
                        let now = Instant::now();
                        if now >= end {
                            break;
                        }
                        match operation {
                            RawOperation::CompositeSign => {
                                std::hint::black_box(key.sign(message, ctx)?);
                            }
                            RawOperation::CompositeVerify => {
                                public.verify(message, ctx, signature)?;
                            }
                            RawOperation::EnvelopeVerify => {
                                if next_envelope == pool.len() {
                                    next_envelope = 0;
                                    replay = envelope::InMemoryReplayCache::new(ENVELOPE_POOL);
                                }
                                let sealed = SealedEnvelope::from_bytes(&pool[next_envelope])?;
                                next_envelope += 1;
                                let context = VerifyContext::new(
                                    RAW_VERIFIER,
                                    now_unix_ms(),
                                    &lookup,
                                    &replay,
                                );
                                envelope::verify(&sealed, &context)?;
                            }
                        }
                        if now >= measure_from {
                            if counted == 0 {
                                cpu_at_start = thread_cpu_ns();
                            }
                            counted += 1;
                        }
                    }
                    let cpu = cpu_at_start.zip(thread_cpu_ns()).map(|(a, b)| b.saturating_sub(a));
                    Ok((counted, cpu))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(BenchError::Setup("thread panicked".into()))))
            .collect()
    });
    let mut operations = 0;
    let mut cpu_ns = Some(0u64);
    for count in counts {
        let (ops, cpu) = count?;
        operations += ops;
        cpu_ns = cpu_ns.zip(cpu).map(|(a, b)| a + b);
    }
    let cpu_time_s = cpu_ns.map(|ns| ns as f64 / 1e9).filter(|s| *s > 0.0);
    let secs = duration.as_secs_f64();
    let throughput = operations as f64 / secs;
    Ok(RawReport {
        operation,
        threads,
        operations,
        duration_s: secs,
        throughput_per_s: throughput,
        mean_us: if throughput > 0.0 { threads as f64 * 1e6 / throughput } else { 0.0 },
        cpu_time_s,
        per_cpu_second: cpu_time_s.map(|cpu| operations as f64 / cpu),
    })
}

/// CPU time of the calling thread in nanoseconds, from `/proc/thread-self/schedstat` (its
/// first field is the time spent running on a CPU).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Envelopes signed before the clock starts (signing is slower than verifying).
fn envelope_pool(key: &SigningKey) -> Result<Vec<Vec<u8>>, BenchError> {
    let issued_at = now_unix_ms();
    let mut pool = Vec::with_capacity(ENVELOPE_POOL);
    for _ in 0..ENVELOPE_POOL {
        let envelope = Envelope::new(
            RAW_SENDER,
            0,
            vec![RAW_VERIFIER.to_owned()],
            issued_at,
            issued_at + 240_000,
            "application/octet-stream",
            vec![0x5a; RAW_PAYLOAD_BYTES],
        )?;
        pool.push(envelope.seal(key)?.to_bytes()?);
    }
    Ok(pool)
}
