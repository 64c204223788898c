//! The replay cache under growth: how long each insertion takes while the cache fills to N
//! entries, and how much memory the entries take, for the cache the node uses
//! (`atp_core::replay::InMemoryReplayCache`) and, side by side in the same run, the two designs
//! it replaced, kept here only as baselines: [`ShardedTreeReplayCache`] (the same shards with a
//! second, expiry-ordered index) and [`SingleMapReplayCache`] (one map under one lock). A map
//! that doubles under its lock shows as a tail: the p99.9 and the maximum, not the median.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use atp_core::envelope::{InMemoryReplayCache, NONCE_LEN, ReplayCache, ReplayCheck};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::BenchError;

/// Which implementation to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayImpl {
    /// `atp_core`'s sharded cache.
    Sharded,
    /// The sharded cache before: each shard kept a `BTreeMap` ordered by expiry beside its table.
    ShardedTree,
    /// The earlier design: one `HashMap<(String, nonce)>` and one expiry `BTreeMap` under one
    /// mutex.
    SingleMap,
}

impl ReplayImpl {
    /// Every implementation, the one in use first.
    pub const ALL: [ReplayImpl; 3] =
        [ReplayImpl::Sharded, ReplayImpl::ShardedTree, ReplayImpl::SingleMap];

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            ReplayImpl::Sharded => "sharded (in use)",
            ReplayImpl::ShardedTree => "sharded + expiry tree (before)",
            ReplayImpl::SingleMap => "single map (before)",
        }
    }
}

/// The sharded cache as it was before its expiry index was removed, for the comparison only:
/// per shard, the table and a `BTreeMap` from `(keep_until, insertion id)` to the key, purged
/// from its oldest end on every insertion.
pub struct ShardedTreeReplayCache {
    shards: Box<[Mutex<TreeShard>]>,
    capacity: usize,
    len: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct TreeShard {
    entries: HashMap<u128, (i64, u64)>,
    by_expiry: BTreeMap<(i64, u64), u128>,
    next_id: u64,
}

impl ShardedTreeReplayCache {
    /// An empty cache of `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        ShardedTreeReplayCache {
            shards: (0..atp_core::replay::SHARDS).map(|_| Mutex::default()).collect(),
            capacity,
            len: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl ShardedTreeReplayCache {
    fn lock(&self, index: usize) -> std::sync::MutexGuard<'_, TreeShard> {
        self.shards[index].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn purge(&self, shard: &mut TreeShard, now: i64) {
        while let Some(entry) = shard.by_expiry.first_entry() {
            if entry.key().0 >= now {
                break;
            }
            let key = entry.remove();
            shard.entries.remove(&key);
            self.len.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl ReplayCache for ShardedTreeReplayCache {
    fn check_and_insert(
        &self,
        sender: &str,
        nonce: &[u8; NONCE_LEN],
        keep_until: i64,
        now: i64,
    ) -> ReplayCheck {
        use std::sync::atomic::Ordering;
        let key = tree_key(sender, nonce);
        let index = (key as usize) % self.shards.len();
        for attempt in 0..2 {
            {
                let mut shard = self.lock(index);
                self.purge(&mut shard, now);
                if shard.entries.contains_key(&key) {
                    return ReplayCheck::Replayed;
                }
                if self.len.fetch_add(1, Ordering::SeqCst) < self.capacity {
                    let id = shard.next_id;
                    shard.next_id += 1;
                    shard.entries.insert(key, (keep_until, id));
                    shard.by_expiry.insert((keep_until, id), key);
                    return ReplayCheck::Fresh;
                }
                self.len.fetch_sub(1, Ordering::SeqCst);
            }
            // Looks full: purge every shard, then try once more.
            if attempt == 0 {
                for other in 0..self.shards.len() {
                    self.purge(&mut self.lock(other), now);
                }
            }
        }
        ReplayCheck::Full
    }

    fn forget(&self, sender: &str, nonce: &[u8; NONCE_LEN]) {
        let key = tree_key(sender, nonce);
        let mut shard = self.lock((key as usize) % self.shards.len());
        if let Some(expiry) = shard.entries.remove(&key) {
            shard.by_expiry.remove(&expiry);
            self.len.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

fn tree_key(sender: &str, nonce: &[u8; NONCE_LEN]) -> u128 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(u32::try_from(sender.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.update(sender.as_bytes());
    h.update(nonce);
    let mut first = [0u8; 16];
    first.copy_from_slice(&h.finalize()[..16]);
    u128::from_be_bytes(first)
}

/// The first `InMemoryReplayCache`, for the comparison only.
#[derive(Default)]
pub struct SingleMapReplayCache {
    inner: Mutex<SingleMapInner>,
    capacity: usize,
}

#[derive(Default)]
struct SingleMapInner {
    entries: HashMap<(String, [u8; NONCE_LEN]), (i64, u64)>,
    by_expiry: BTreeMap<(i64, u64), (String, [u8; NONCE_LEN])>,
    next_id: u64,
}

impl SingleMapReplayCache {
    /// An empty cache of `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        SingleMapReplayCache { inner: Mutex::default(), capacity }
    }
}

impl ReplayCache for SingleMapReplayCache {
    fn check_and_insert(
        &self,
        sender: &str,
        nonce: &[u8; NONCE_LEN],
        keep_until: i64,
        now: i64,
    ) -> ReplayCheck {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(entry) = inner.by_expiry.first_entry() {
            if entry.key().0 >= now {
                break;
            }
            let key = entry.remove();
            inner.entries.remove(&key);
        }
        let key = (sender.to_owned(), *nonce);
        if inner.entries.contains_key(&key) {
            return ReplayCheck::Replayed;
        }
        if inner.entries.len() >= self.capacity {
            return ReplayCheck::Full;
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.entries.insert(key.clone(), (keep_until, id));
        inner.by_expiry.insert((keep_until, id), key);
        ReplayCheck::Fresh
    }

    fn forget(&self, sender: &str, nonce: &[u8; NONCE_LEN]) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(expiry) = inner.entries.remove(&(sender.to_owned(), *nonce)) {
            inner.by_expiry.remove(&expiry);
        }
    }
}

/// One implementation's insertion latencies while filling to `entries`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplayReport {
    /// The implementation.
    pub implementation: ReplayImpl,
    /// Entries inserted (all fresh).
    pub entries: u64,
    /// Threads inserting at once.
    pub threads: usize,
    /// Wall-clock time to insert them all.
    pub elapsed_ms: f64,
    /// Insertion latency percentiles, microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// The slowest insertion.
    pub max_us: f64,
    /// How much this process's resident memory grew during the fill, in bytes (meaningful when
    /// the process measures one implementation only: `atp-bench replay-cache` runs each in a
    /// process of its own).
    pub rss_growth_bytes: u64,
}

impl ReplayReport {
    /// Resident memory per entry, in bytes.
    pub fn bytes_per_entry(&self) -> f64 {
        self.rss_growth_bytes as f64 / self.entries.max(1) as f64
    }
}

impl std::fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<30} {} entries, {} threads: {:.0} ms; insert p50 {:.2} µs, p99 {:.2} µs, \
             p99.9 {:.1} µs, max {:.1} µs; {:.0} bytes/entry",
            self.implementation.name(),
            self.entries,
            self.threads,
            self.elapsed_ms,
            self.p50_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
            self.bytes_per_entry()
        )
    }
}

/// Fill `implementation` with `entries` fresh nonces from `threads` threads and record every
/// insertion's latency. Senders are realistic `did:atp` strings (64 of them); no entry expires
/// during the fill.
pub fn measure(
    implementation: ReplayImpl,
    entries: u64,
    threads: usize,
) -> Result<ReplayReport, BenchError> {
    let threads = threads.max(1);
    let capacity = usize::try_from(entries).unwrap_or(usize::MAX);
    let cache: Box<dyn ReplayCache> = match implementation {
        ReplayImpl::Sharded => Box::new(InMemoryReplayCache::new(capacity)),
        ReplayImpl::ShardedTree => Box::new(ShardedTreeReplayCache::new(capacity)),
        ReplayImpl::SingleMap => Box::new(SingleMapReplayCache::new(capacity)),
    };
    let senders: Vec<String> =
        (0..64).map(|i| format!("did:atp:zQmReplayBenchSender{i:024}")).collect();
    let per_thread = entries / threads as u64;
    let rss_before = crate::process::resident_bytes(std::process::id())?.0;
    let started = Instant::now();
    let histograms: Vec<Result<Histogram<u64>, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let cache = &cache;
                let senders = &senders;
                scope.spawn(move || {
                    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
                        .map_err(|e| BenchError::Setup(e.to_string()))?;
                    for i in 0..per_thread {
                        let mut nonce = [0u8; NONCE_LEN];
                        nonce[..8].copy_from_slice(&(t as u64).to_be_bytes());
                        nonce[8..].copy_from_slice(&i.to_be_bytes());
                        let sender = &senders[(i % 64) as usize];
                        let begin = Instant::now();
                        let answer = cache.check_and_insert(sender, &nonce, i64::MAX, 0);
                        let took = begin.elapsed().as_nanos().max(1);
                        if answer != ReplayCheck::Fresh {
                            return Err(BenchError::Setup(format!("insert {i}: {answer:?}")));
                        }
                        h.saturating_record(u64::try_from(took).unwrap_or(u64::MAX));
                    }
                    Ok(h)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(BenchError::Setup("thread panicked".into()))))
            .collect()
    });
    let elapsed = started.elapsed();
    let rss_after = crate::process::resident_bytes(std::process::id())?.0;
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    for h in histograms {
        all.add(h?).map_err(|e| BenchError::Setup(e.to_string()))?;
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    // Dropping a cache of millions of entries takes a while; it is not part of the figure.
    drop(cache);
    Ok(ReplayReport {
        implementation,
        entries: per_thread * threads as u64,
        threads,
        elapsed_ms: Duration::as_secs_f64(&elapsed) * 1000.0,
        p50_us: us(all.value_at_quantile(0.50)),
        p99_us: us(all.value_at_quantile(0.99)),
        p999_us: us(all.value_at_quantile(0.999)),
        max_us: us(all.max()),
        rss_growth_bytes: rss_after.saturating_sub(rss_before),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The baselines answer as the cache in use does (a comparison against a broken baseline
    /// would be worthless): fresh, replayed, full, and room again once entries expire.
    #[test]
    fn every_implementation_keeps_the_replay_rules() {
        for implementation in ReplayImpl::ALL {
            let cache: Box<dyn ReplayCache> = match implementation {
                ReplayImpl::Sharded => Box::new(InMemoryReplayCache::new(2)),
                ReplayImpl::ShardedTree => Box::new(ShardedTreeReplayCache::new(2)),
                ReplayImpl::SingleMap => Box::new(SingleMapReplayCache::new(2)),
            };
            let nonce = |i: u8| [i; NONCE_LEN];
            let answers = [
                cache.check_and_insert("did:x:a", &nonce(1), 10, 0),
                cache.check_and_insert("did:x:a", &nonce(1), 10, 5),
                cache.check_and_insert("did:x:b", &nonce(1), 20, 5),
                cache.check_and_insert("did:x:a", &nonce(2), 20, 5),
                cache.check_and_insert("did:x:a", &nonce(2), 20, 11),
            ];
            use ReplayCheck::{Fresh, Full, Replayed};
            assert_eq!(answers, [Fresh, Replayed, Fresh, Full, Fresh], "{implementation:?}");
        }
    }

    /// A small fill of each implementation counts every insertion and reports a latency.
    #[test]
    fn measure_fills_each_implementation() {
        for implementation in ReplayImpl::ALL {
            let report = measure(implementation, 4_096, 2).unwrap();
            assert_eq!(report.entries, 4_096, "{implementation:?}");
            assert!(report.max_us >= report.p50_us && report.p50_us > 0.0, "{report}");
        }
    }
}
