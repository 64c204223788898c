//! Replay caches: a record of `(sender, nonce)` pairs seen, each kept until the last instant at
//! which its envelope (or presentation challenge) could still be accepted.
//!
//! [`InMemoryReplayCache`] is built so that no insertion ever waits for a large table to grow.
//! An earlier version kept one `HashMap` keyed by `(String, nonce)` under one mutex: when the map
//! doubled, every entry was rehashed while the lock was held, and the verifications queued
//! behind it. At half load that showed as p99 spikes of 46 and 180 ms in the runs where the map
//! grew, and with millions of entries a pause would last seconds. Now:
//!
//! - an entry is a 128-bit digest, SHA-256(u32 len ‖ sender ‖ nonce) truncated: no allocation per
//!   entry, and a key that an attacker cannot steer (a false "replayed" needs a 128-bit
//!   collision);
//! - entries are spread over [`SHARDS`] shards, each with its own lock, map and expiry order, so a
//!   map that grows holds 1/[`SHARDS`] of the entries and other shards go on meanwhile;
//! - expiry stays exact (an entry goes as soon as `keep_until < now`) and the capacity stays one
//!   global bound, counted atomically; when the cache looks full, every shard is purged before
//!   the answer is [`ReplayCheck::Full`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

/// The nonce length in bytes (envelopes carry 128-bit nonces; presentation challenges are
/// recorded as 16-byte digests).
pub const NONCE_LEN: usize = 16;

/// How many independent shards an [`InMemoryReplayCache`] has.
pub const SHARDS: usize = 512;

/// The outcome of [`ReplayCache::check_and_insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayCheck {
    /// Not seen before; now recorded.
    Fresh,
    /// Seen before: a replay.
    Replayed,
    /// The cache is full of unexpired entries and cannot record the nonce. The envelope is
    /// refused (fail closed) rather than an unexpired entry being forgotten.
    Full,
}

/// A record of `(sender, nonce)` pairs seen, each kept until `keep_until`.
pub trait ReplayCache: Send + Sync {
    /// Record `(sender, nonce)` unless it is already present. `keep_until` is the last instant
    /// (Unix ms) at which the envelope could still be accepted (`expires_at + max_skew`);
    /// entries with `keep_until < now` may be dropped.
    fn check_and_insert(
        &self,
        sender: &str,
        nonce: &[u8; NONCE_LEN],
        keep_until: i64,
        now: i64,
    ) -> ReplayCheck;
}

/// An entry: the digest of `(sender, nonce)`.
type Key = u128;

fn key_of(sender: &str, nonce: &[u8; NONCE_LEN]) -> Key {
    let mut h = Sha256::new();
    h.update(u32::try_from(sender.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.update(sender.as_bytes());
    h.update(nonce);
    let digest = h.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(first)
}

#[derive(Default)]
struct Shard {
    /// Digest → (keep_until, insertion id).
    entries: HashMap<Key, (i64, u64)>,
    /// (keep_until, insertion id) → digest, oldest expiry first.
    by_expiry: BTreeMap<(i64, u64), Key>,
    next_id: u64,
}

impl Shard {
    /// Drops the entries with `keep_until < now`; returns how many.
    fn purge(&mut self, now: i64) -> usize {
        let mut dropped = 0;
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 >= now {
                break;
            }
            let key = entry.remove();
            self.entries.remove(&key);
            dropped += 1;
        }
        dropped
    }
}

/// A bounded in-memory [`ReplayCache`]: at most `capacity` entries, expired entries evicted
/// first; when every entry is unexpired a new one is refused ([`ReplayCheck::Full`]). Sharded,
/// so that no insertion waits for a whole table to grow (see the module documentation).
///
/// Size it for the expected rate × (max lifetime + max skew).
pub struct InMemoryReplayCache {
    capacity: usize,
    len: AtomicUsize,
    /// The latest `now` an insertion was made with, for [`InMemoryReplayCache::len`].
    latest_now: AtomicI64,
    shards: Box<[Mutex<Shard>]>,
}

impl InMemoryReplayCache {
    /// An empty cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        InMemoryReplayCache {
            capacity,
            len: AtomicUsize::new(0),
            latest_now: AtomicI64::new(i64::MIN),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    /// The maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of entries held that had not expired at the latest insertion's time.
    pub fn len(&self) -> usize {
        self.purge_all(self.latest_now.load(Ordering::Relaxed));
        self.len.load(Ordering::SeqCst)
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self, index: usize) -> std::sync::MutexGuard<'_, Shard> {
        // A panic while holding the lock cannot leave a shard inconsistent in a way that
        // matters here (its two maps are updated together), so recover from poisoning.
        self.shards[index].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn purge_shard(&self, shard: &mut Shard, now: i64) {
        let dropped = shard.purge(now);
        if dropped > 0 {
            self.len.fetch_sub(dropped, Ordering::SeqCst);
        }
    }

    fn purge_all(&self, now: i64) {
        for index in 0..self.shards.len() {
            let mut shard = self.lock(index);
            self.purge_shard(&mut shard, now);
        }
    }
}

impl std::fmt::Debug for InMemoryReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryReplayCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len.load(Ordering::Relaxed))
            .finish()
    }
}

impl ReplayCache for InMemoryReplayCache {
    fn check_and_insert(
        &self,
        sender: &str,
        nonce: &[u8; NONCE_LEN],
        keep_until: i64,
        now: i64,
    ) -> ReplayCheck {
        self.latest_now.fetch_max(now, Ordering::Relaxed);
        let key = key_of(sender, nonce);
        // The digest is uniform, so its low bits pick a shard evenly.
        let index = (key as usize) % self.shards.len();
        for attempt in 0..2 {
            {
                let mut shard = self.lock(index);
                self.purge_shard(&mut shard, now);
                if shard.entries.contains_key(&key) {
                    return ReplayCheck::Replayed;
                }
                if self.len.fetch_add(1, Ordering::SeqCst) < self.capacity {
                    let id = shard.next_id;
                    shard.next_id = shard.next_id.wrapping_add(1);
                    shard.entries.insert(key, (keep_until, id));
                    shard.by_expiry.insert((keep_until, id), key);
                    return ReplayCheck::Fresh;
                }
                self.len.fetch_sub(1, Ordering::SeqCst);
            }
            // Looks full: expired entries may still sit in shards nobody touched lately. Purge
            // them all (without holding this shard's lock, so that two purges cannot deadlock)
            // and try once more.
            if attempt == 0 {
                self.purge_all(now);
            }
        }
        ReplayCheck::Full
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn nonce(t: u64, i: u64) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        n[..8].copy_from_slice(&t.to_be_bytes());
        n[8..].copy_from_slice(&i.to_be_bytes());
        n
    }

    /// Many threads at once: the capacity is one global bound (never exceeded, and reached
    /// exactly), and of several threads inserting the same nonce exactly one gets `Fresh`.
    #[test]
    fn concurrent_inserts_keep_one_exact_bound() {
        let cache = InMemoryReplayCache::new(1000);
        let fresh: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4u64)
                .map(|t| {
                    let cache = &cache;
                    s.spawn(move || {
                        (0..400u64)
                            .filter(|i| {
                                cache.check_and_insert("did:x:a", &nonce(t, *i), 10, 0)
                                    == ReplayCheck::Fresh
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(fresh, 1000);
        assert_eq!(cache.len(), 1000);
        let shared = nonce(99, 99);
        let cache = InMemoryReplayCache::new(16);
        let answers: Vec<ReplayCheck> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| cache.check_and_insert("did:x:b", &shared, 10, 0)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(answers.iter().filter(|a| **a == ReplayCheck::Fresh).count(), 1, "{answers:?}");
        assert_eq!(answers.iter().filter(|a| **a == ReplayCheck::Replayed).count(), 7);
    }

    /// Entries spread over the shards, and a full cache frees expired entries in shards other
    /// than the one being inserted into.
    #[test]
    fn full_cache_purges_every_shard_before_refusing() {
        let cache = InMemoryReplayCache::new(SHARDS * 2);
        for i in 0..(SHARDS * 2) as u64 {
            assert_eq!(cache.check_and_insert("did:x:a", &nonce(1, i), 100, 0), ReplayCheck::Fresh);
        }
        let used = cache.shards.iter().filter(|s| !s.lock().unwrap().entries.is_empty()).count();
        assert!(used > SHARDS / 2, "entries spread over {used} of {SHARDS} shards");
        assert_eq!(cache.check_and_insert("did:x:a", &nonce(2, 0), 300, 50), ReplayCheck::Full);
        // At t = 101 every earlier entry has expired, wherever it sits.
        assert_eq!(cache.check_and_insert("did:x:a", &nonce(2, 0), 300, 101), ReplayCheck::Fresh);
        assert_eq!(cache.len(), 1);
    }
}
