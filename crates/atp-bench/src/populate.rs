//! Filling a node with identities for scale runs.
//!
//! Inception events are signed on `signing_threads` threads while `concurrency` submitters
//! keep that many `SubmitEvent`s in flight, so the node's group commit writes them in batches.
//! To keep the client's share of the two cores small, identities reuse a small pool of keys and
//! differ in their inception time (one second apart, going back from now), which makes every
//! inception, scid and DID distinct; the node does the same work (KEL verification, one log
//! leaf, one KEL row) as for identities with keys of their own.

use std::time::{Duration, Instant};

use atp_core::kel;
use atp_core::vc::DateTimeStamp;
use atp_crypto::{AlgorithmId, SigningKey};
use atp_grpc::v1 as pb;
use atp_grpc::v1::identity_service_client::IdentityServiceClient;
use serde::Serialize;
use tonic::transport::Channel;

use crate::report::error_label;
use crate::{BenchError, now_unix_ms};

/// Distinct signing keys the populated identities share.
const KEY_POOL: usize = 64;
/// Signed events buffered between the signers and the submitters.
const BUFFER: usize = 4096;

/// What `populate` did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PopulateReport {
    /// Identities the node accepted.
    pub accepted: u64,
    /// Submissions refused, by `CODE/REASON`.
    pub errors: std::collections::BTreeMap<String, u64>,
    /// Wall-clock time, in seconds.
    pub duration_s: f64,
    /// Accepted identities per second.
    pub rate_per_s: f64,
}

/// Submit `count` new identities to the nodes behind `channels`.
pub async fn populate(
    channels: &[Channel],
    count: u64,
    concurrency: usize,
    signing_threads: usize,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> Result<PopulateReport, BenchError> {
    if channels.is_empty() {
        return Err(BenchError::Invalid("no connection to send on".into()));
    }
    let keys = crate::scenario::parallel_make(KEY_POOL, signing_threads, |_| {
        Ok(SigningKey::generate(AlgorithmId::MlDsa65Ed25519)?)
    })?;
    let next = SigningKey::generate(AlgorithmId::MlDsa65Ed25519)?.public_key();
    let newest = now_unix_ms() / 1000 - 1;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(BUFFER);
    let started = Instant::now();

    // Signers: thread t signs identities t, t + threads, t + 2 threads, ...
    let threads = signing_threads.max(1);
    let keys = std::sync::Arc::new(keys);
    let mut signers = Vec::new();
    for t in 0..threads {
        let (tx, keys, next) = (tx.clone(), keys.clone(), next.clone());
        signers.push(std::thread::spawn(move || -> Result<(), BenchError> {
            let mut n = t as u64;
            while n < count {
                let ts = DateTimeStamp::from_unix(newest - n as i64).to_string();
                let key = &keys[(n as usize) % keys.len()];
                let event = kel::incept(key, &next, vec![], &ts)?;
                if tx.blocking_send(event.to_json()?.into_bytes()).is_err() {
                    break;
                }
                n += threads as u64;
            }
            Ok(())
        }));
    }
    drop(tx);

    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let progress = std::sync::Arc::new(progress);
    let mut submitters = Vec::new();
    for s in 0..concurrency.max(1) {
        let mut client = IdentityServiceClient::new(channels[s % channels.len()].clone());
        let (rx, accepted, progress) = (rx.clone(), accepted.clone(), progress.clone());
        submitters.push(tokio::spawn(async move {
            let mut errors = std::collections::BTreeMap::<String, u64>::new();
            loop {
                let next = rx.lock().await.recv().await;
                let Some(signed_event_json) = next else { break };
                match client.submit_event(pb::SubmitEventRequest { signed_event_json }).await {
                    Ok(r) if r.get_ref().outcome == pb::SubmitEventOutcome::Accepted as i32 => {
                        let done = accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if done % 10_000 == 0 {
                            progress(done);
                        }
                    }
                    Ok(_) => *errors.entry("DUPLICATE".into()).or_default() += 1,
                    Err(status) => *errors.entry(error_label(&status)).or_default() += 1,
                }
            }
            errors
        }));
    }
    let mut errors = std::collections::BTreeMap::new();
    for task in submitters {
        let part = task.await.map_err(|e| BenchError::Setup(format!("submitter failed: {e}")))?;
        for (label, n) in part {
            *errors.entry(label).or_default() += n;
        }
    }
    for signer in signers {
        signer.join().map_err(|_| BenchError::Setup("a signing thread panicked".into()))??;
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    let accepted = accepted.load(std::sync::atomic::Ordering::Relaxed);
    Ok(PopulateReport {
        accepted,
        errors,
        duration_s: elapsed.as_secs_f64(),
        rate_per_s: accepted as f64 / elapsed.as_secs_f64(),
    })
}
