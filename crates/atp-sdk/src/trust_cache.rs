//! Senders' verified trust levels, cached by the agent that opens their envelopes. Its own module
//! so that `agent.rs` (which owns the cache) and `trust.rs` (which fills it) import it, not each
//! other.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::clock::now_ms;

/// Senders' verified trust levels, each until the earlier of the cache TTL and its proof's
/// expiry, at most `capacity` of them.
pub(crate) struct TrustLevelCache {
    entries: Mutex<HashMap<String, (Instant, u8)>>,
    capacity: usize,
    ttl: Duration,
}

impl TrustLevelCache {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        TrustLevelCache { entries: Mutex::new(HashMap::new()), capacity, ttl }
    }

    pub(crate) fn get(&self, did: &str) -> Option<u8> {
        let map = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(did).filter(|(until, _)| Instant::now() < *until).map(|(_, level)| *level)
    }

    pub(crate) fn put(&self, did: &str, level: u8, proof_valid_until_secs: i64) {
        let left_ms = proof_valid_until_secs.saturating_mul(1000).saturating_sub(now_ms());
        let lifetime = self.ttl.min(Duration::from_millis(u64::try_from(left_ms).unwrap_or(0)));
        if self.capacity == 0 || lifetime.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut map = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= self.capacity && !map.contains_key(did) {
            map.retain(|_, (until, _)| now < *until);
            if map.len() >= self.capacity
                && let Some(first) =
                    map.iter().min_by_key(|(_, (until, _))| *until).map(|(k, _)| k.clone())
            {
                map.remove(&first);
            }
        }
        map.insert(did.to_owned(), (now + lifetime, level));
    }
}
