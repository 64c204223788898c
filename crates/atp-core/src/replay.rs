//! Replay caches: a record of `(sender, nonce)` pairs seen, each kept until the last instant at
//! which its envelope (or presentation challenge) could still be accepted.
//!
//! [`InMemoryReplayCache`] is built so that no insertion ever waits for a large table to grow,
//! and so that a cache of millions of entries stays small. An earlier version kept one
//! `HashMap` keyed by `(String, nonce)` under one mutex: when the map doubled, every entry was
//! rehashed while the lock was held, and the verifications queued behind it. At half load that
//! showed as p99 spikes of 46 and 180 ms in the runs where the map grew, and with millions of
//! entries a pause would last seconds. Now:
//!
//! - an entry is a 128-bit digest, SHA-256(u32 len ‖ sender ‖ nonce) truncated, and its expiry:
//!   24 bytes, no allocation per entry, and a key that an attacker cannot steer (a false
//!   "replayed" needs a 128-bit collision);
//! - entries are spread over [`SHARDS`] shards, each with its own lock and table, so a table that
//!   grows holds 1/[`SHARDS`] of the entries and other shards go on meanwhile;
//! - there is no expiry index. A shard knows its earliest expiry and sweeps its own table once
//!   that has passed, at most once per [`SWEEP_INTERVAL_MS`]; a second index ordered by expiry
//!   (a `BTreeMap`, as an earlier version had) more than doubled the memory per entry and put
//!   several more cache misses on every insertion;
//! - the answer is still exact: an entry whose `keep_until` has passed counts as absent whether
//!   or not it has been swept, and before the answer is [`ReplayCheck::Full`] every shard is swept,
//!   so the capacity is one global bound on *unexpired* entries, counted atomically.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

/// The nonce length in bytes (envelopes carry 128-bit nonces; presentation challenges are
/// recorded as 16-byte digests).
pub const NONCE_LEN: usize = 16;

/// How many independent shards an [`InMemoryReplayCache`] has.
pub const SHARDS: usize = 512;

/// The least time (ms) between two sweeps of one shard's expired entries in the course of
/// insertions. A sweep walks the shard's whole table (about capacity / [`SHARDS`] entries), so
/// this bounds its cost to one walk per shard per interval; an expired entry that waits for its
/// sweep is already treated as absent.
pub const SWEEP_INTERVAL_MS: i64 = 1_000;

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

    /// Forgets `(sender, nonce)` after a [`ReplayCheck::Fresh`] whose acceptance was then
    /// withdrawn (a check after this cache, such as a cluster-wide record, failed), so that the
    /// same envelope, never accepted, can be checked again instead of being called a replay.
    fn forget(&self, sender: &str, nonce: &[u8; NONCE_LEN]);
}

/// An entry's key: the digest of `(sender, nonce)`, as two words so that an entry (key and
/// expiry) is 24 bytes with 8-byte alignment rather than 32 with a `u128`'s 16.
type Key = [u64; 2];

fn key_of(sender: &str, nonce: &[u8; NONCE_LEN]) -> Key {
    let mut h = Sha256::new();
    h.update(u32::try_from(sender.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.update(sender.as_bytes());
    h.update(nonce);
    let digest = h.finalize();
    let mut high = [0u8; 8];
    let mut low = [0u8; 8];
    high.copy_from_slice(&digest[..8]);
    low.copy_from_slice(&digest[8..16]);
    [u64::from_be_bytes(high), u64::from_be_bytes(low)]
}

struct Shard {
    /// Digest → keep_until.
    entries: HashMap<Key, i64>,
    /// No entry expires before this instant (the least `keep_until`, or `i64::MAX` if empty).
    earliest_expiry: i64,
    /// When this shard was last swept in the course of an insertion.
    last_sweep: i64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { entries: HashMap::new(), earliest_expiry: i64::MAX, last_sweep: i64::MIN }
    }
}

impl Shard {
    /// Drops the entries with `keep_until < now` (if any can have expired); returns how many.
    fn sweep(&mut self, now: i64) -> usize {
        if self.earliest_expiry >= now {
            return 0;
        }
        let before = self.entries.len();
        let mut earliest = i64::MAX;
        self.entries.retain(|_, keep_until| {
            let keep = *keep_until >= now;
            if keep {
                earliest = earliest.min(*keep_until);
            }
            keep
        });
        self.earliest_expiry = earliest;
        self.last_sweep = now;
        before - self.entries.len()
    }
}

/// A bounded in-memory [`ReplayCache`]: at most `capacity` unexpired entries; when every entry
/// is unexpired a new one is refused ([`ReplayCheck::Full`]). Sharded, so that no insertion
/// waits for a whole table to grow, and about 24–50 bytes per entry (see the module
/// documentation).
///
/// Size it for the expected rate × (max lifetime + max skew).
pub struct InMemoryReplayCache {
    capacity: usize,
    /// Entries held, swept or not (an expired one leaves at its shard's next sweep).
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
        self.sweep_all(self.latest_now.load(Ordering::Relaxed));
        self.len.load(Ordering::SeqCst)
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self, index: usize) -> std::sync::MutexGuard<'_, Shard> {
        // A panic while holding the lock cannot leave a shard inconsistent in a way that
        // matters here (the earliest expiry is only ever too early, which costs a sweep), so
        // recover from poisoning.
        self.shards[index].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sweep_shard(&self, shard: &mut Shard, now: i64) {
        let dropped = shard.sweep(now);
        if dropped > 0 {
            self.len.fetch_sub(dropped, Ordering::SeqCst);
        }
    }

    fn sweep_all(&self, now: i64) {
        for index in 0..self.shards.len() {
            let mut shard = self.lock(index);
            self.sweep_shard(&mut shard, now);
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
        let index = (key[1] as usize) % self.shards.len();
        for attempt in 0..2 {
            {
                let mut guard = self.lock(index);
                let shard = &mut *guard;
                if shard.last_sweep.saturating_add(SWEEP_INTERVAL_MS) <= now {
                    self.sweep_shard(shard, now);
                }
                match shard.entries.get_mut(&key) {
                    Some(held) if *held >= now => return ReplayCheck::Replayed,
                    Some(held) => {
                        // Seen, but expired and not yet swept: as good as absent. The slot is
                        // reused, so the count does not change.
                        *held = keep_until;
                        shard.earliest_expiry = shard.earliest_expiry.min(keep_until);
                        return ReplayCheck::Fresh;
                    }
                    None => {}
                }
                if self.len.fetch_add(1, Ordering::SeqCst) < self.capacity {
                    shard.entries.insert(key, keep_until);
                    shard.earliest_expiry = shard.earliest_expiry.min(keep_until);
                    return ReplayCheck::Fresh;
                }
                self.len.fetch_sub(1, Ordering::SeqCst);
                // Looks full: this shard's own expired entries go first.
                self.sweep_shard(shard, now);
            }
            // Expired entries may still sit in shards nobody touched lately. Sweep them all
            // (without holding this shard's lock, so that two sweeps cannot deadlock) and try
            // once more.
            if attempt == 0 {
                self.sweep_all(now);
            }
        }
        ReplayCheck::Full
    }

    fn forget(&self, sender: &str, nonce: &[u8; NONCE_LEN]) {
        let key = key_of(sender, nonce);
        let index = (key[1] as usize) % self.shards.len();
        if self.lock(index).entries.remove(&key).is_some() {
            self.len.fetch_sub(1, Ordering::SeqCst);
        }
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

    /// A forgotten entry is fresh again and frees its place; forgetting an unknown one changes
    /// nothing.
    #[test]
    fn a_forgotten_entry_is_fresh_again() {
        let cache = InMemoryReplayCache::new(2);
        assert_eq!(cache.check_and_insert("did:a", &nonce(1, 1), 100, 0), ReplayCheck::Fresh);
        assert_eq!(cache.check_and_insert("did:a", &nonce(1, 2), 100, 0), ReplayCheck::Fresh);
        assert_eq!(cache.check_and_insert("did:a", &nonce(1, 3), 100, 0), ReplayCheck::Full);
        cache.forget("did:a", &nonce(1, 1));
        cache.forget("did:b", &nonce(1, 2));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.check_and_insert("did:a", &nonce(1, 2), 100, 0), ReplayCheck::Replayed);
        assert_eq!(cache.check_and_insert("did:a", &nonce(1, 1), 100, 0), ReplayCheck::Fresh);
        assert_eq!(cache.check_and_insert("did:a", &nonce(1, 1), 100, 0), ReplayCheck::Replayed);
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

    /// An entry whose time has passed counts as absent before any sweep has dropped it; the
    /// count stays exact (its slot is reused), and `len` sweeps.
    #[test]
    fn expired_entries_are_absent_before_their_sweep() {
        let cache = InMemoryReplayCache::new(8);
        assert_eq!(cache.check_and_insert("did:x:a", &nonce(1, 1), 100, 0), ReplayCheck::Fresh);
        assert_eq!(
            cache.check_and_insert("did:x:a", &nonce(1, 1), 100, 100),
            ReplayCheck::Replayed
        );
        // Every shard was just swept, so none sweeps again at 101: the answer must not depend on
        // whether the sweep ran.
        for shard in cache.shards.iter() {
            shard.lock().unwrap().last_sweep = 100;
        }
        assert_eq!(cache.check_and_insert("did:x:a", &nonce(1, 1), 500, 101), ReplayCheck::Fresh);
        assert_eq!(
            cache.check_and_insert("did:x:a", &nonce(1, 1), 500, 102),
            ReplayCheck::Replayed
        );
        assert_eq!(cache.len(), 1);
    }

    /// Expired entries leave their shard's table at a sweep, at most one sweep per interval
    /// per shard; an entry not yet expired is never dropped by a sweep.
    #[test]
    fn sweeps_drop_only_expired_entries() {
        let cache = InMemoryReplayCache::new(100_000);
        let total = (SHARDS * 8) as u64;
        for i in 0..total {
            // Half the entries are kept until 1 000, half until 10 000.
            let keep = if i % 2 == 0 { 1_000 } else { 10_000 };
            assert_eq!(
                cache.check_and_insert("did:x:a", &nonce(3, i), keep, 0),
                ReplayCheck::Fresh
            );
        }
        // One more per shard's worth, kept exactly until the instant of the sweeps below: at
        // that instant they are still valid and must survive.
        let sweep_at = 1_001 + SWEEP_INTERVAL_MS;
        for i in 0..SHARDS as u64 {
            assert_eq!(
                cache.check_and_insert("did:x:c", &nonce(6, i), sweep_at, 0),
                ReplayCheck::Fresh
            );
        }
        let total_edge = SHARDS;
        let held = |cache: &InMemoryReplayCache| -> usize {
            cache.shards.iter().map(|s| s.lock().unwrap().entries.len()).sum()
        };
        assert_eq!(held(&cache), total as usize + total_edge);
        // At 1 001 the first half has expired. Insertions sweep the shards they touch.
        for i in 0..total {
            cache.check_and_insert("did:x:b", &nonce(4, i), 10_000, sweep_at);
        }
        let after = held(&cache) - total_edge;
        assert!(after < (total + total / 2 + total / 4) as usize, "{after} entries still held");
        assert_eq!(cache.len(), (total + total / 2) as usize + total_edge);
        assert_eq!(held(&cache), (total + total / 2) as usize + total_edge, "len() sweeps");
        for i in 0..SHARDS as u64 {
            assert_eq!(
                cache.check_and_insert("did:x:c", &nonce(6, i), sweep_at, sweep_at),
                ReplayCheck::Replayed
            );
        }
        // Everything left is kept until 10 000 and is still there.
        for i in (1..total).step_by(2) {
            assert_eq!(
                cache.check_and_insert("did:x:a", &nonce(3, i), 10_000, 9_000),
                ReplayCheck::Replayed
            );
        }
    }

    /// A full cache answers `Full` however the insertions are timed, and frees room as soon as
    /// entries expire, even in a shard swept a moment ago.
    #[test]
    fn full_is_exact_right_after_a_sweep() {
        let cache = InMemoryReplayCache::new(2);
        assert_eq!(cache.check_and_insert("did:x:a", &nonce(5, 1), 10, 0), ReplayCheck::Fresh);
        assert_eq!(cache.check_and_insert("did:x:a", &nonce(5, 2), 20, 0), ReplayCheck::Fresh);
        assert_eq!(cache.check_and_insert("did:x:a", &nonce(5, 3), 30, 5), ReplayCheck::Full);
        // t = 11: the first entry has expired, though no sweep interval has passed.
        assert_eq!(cache.check_and_insert("did:x:a", &nonce(5, 3), 30, 11), ReplayCheck::Fresh);
        assert_eq!(cache.check_and_insert("did:x:a", &nonce(5, 4), 30, 12), ReplayCheck::Full);
        assert_eq!(cache.check_and_insert("did:x:a", &nonce(5, 4), 30, 21), ReplayCheck::Fresh);
        assert_eq!(cache.check_and_insert("did:x:a", &nonce(5, 2), 30, 21), ReplayCheck::Full);
    }
}
