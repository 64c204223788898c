//! The [`KelChangeFeed`] of a [`super::PgStore`]: `LISTEN` on one channel.
//!
//! - **Changes.** A trigger on `identities` (migration 0005) sends the DID of every row written
//!   to [`CHANNEL`]. PostgreSQL delivers a notification when its transaction commits, and a
//!   listening session receives the notifications of all transactions in commit order.
//! - **Catching up.** The feed sends its own marker, `ping:<tag>:<n>`, on the same channel every
//!   period, from the pool, and notes the instant just before each was sent. When marker `n`
//!   comes back, every transaction that committed before that instant committed before the
//!   marker did, so its notification came first: the feed reports
//!   [`KelChange::CaughtUp`] with that instant.
//! - **Gaps.** Notifications sent while no session listens are lost. So the feed reports
//!   [`KelChange::Gap`] after every (re)connection, once its `LISTEN` is in force, and counts
//!   only markers sent after that.
//!
//! The listening session holds one connection of the pool for as long as the feed lives (so
//! `[ha] pool_size` must be at least 2 with the feed on). A closed pool ends the feed with
//! `StoreError::Closed`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atp_store::{KelChange, KelChangeFeed, MIN_CATCH_UP_PERIOD, StoreError, StoreFuture};
use sqlx::postgres::PgListener;

use super::failover::Primary;

/// The channel of key event log changes and of the feeds' markers.
pub(super) const CHANNEL: &str = "atp_kel_changed";

/// How many markers a feed remembers while they are in flight; older ones are forgotten (a
/// marker that comes back after that long proves nothing the feed still needs).
const MAX_MARKERS_IN_FLIGHT: usize = 1_024;

/// The markers a feed sent and not yet received back, and which of them count.
#[derive(Debug, Default)]
struct Markers {
    /// (number, the instant just before it was sent), oldest first.
    sent: Mutex<VecDeque<(u64, Instant)>>,
    /// The next marker's number.
    next: AtomicU64,
    /// The first number sent after the current `LISTEN` took effect.
    counted_from: AtomicU64,
}

impl Markers {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, Instant)>> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes marker `n` as sent now.
    fn sending(&self) -> u64 {
        let mut sent = self.lock();
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        if sent.len() >= MAX_MARKERS_IN_FLIGHT {
            sent.pop_front();
        }
        sent.push_back((n, Instant::now()));
        n
    }

    /// Marker `n` came back: the instant it was sent, if it counts.
    fn received(&self, n: u64) -> Option<Instant> {
        if n < self.counted_from.load(Ordering::SeqCst) {
            return None;
        }
        let mut sent = self.lock();
        let mut found = None;
        while let Some(&(m, at)) = sent.front() {
            if m > n {
                break;
            }
            sent.pop_front();
            if m == n {
                found = Some(at);
            }
        }
        found
    }

    /// A new `LISTEN` took effect: only markers sent from now on count.
    fn restart(&self) {
        let sent = self.lock();
        self.counted_from.store(self.next.load(Ordering::SeqCst), Ordering::SeqCst);
        drop(sent);
    }
}

/// See the [module documentation](self).
pub(super) struct PgKelFeed {
    primary: Arc<Primary>,
    listener: Option<PgListener>,
    /// `ping:<tag>:`: this feed's marker prefix; the tag is random, so that no two feeds
    /// mistake each other's markers for their own.
    marker_prefix: String,
    markers: Arc<Markers>,
    sender: tokio::task::JoinHandle<()>,
}

impl Drop for PgKelFeed {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

impl PgKelFeed {
    pub(super) fn new(primary: Arc<Primary>, period: Duration) -> Result<Self, StoreError> {
        let mut tag = [0u8; 16];
        getrandom::fill(&mut tag)
            .map_err(|e| StoreError::WriteFailed(format!("no randomness for the feed: {e}")))?;
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let marker_prefix = format!("ping:{tag}:");
        let markers = Arc::new(Markers::default());
        let sender = tokio::spawn(send_markers(
            primary.clone(),
            marker_prefix.clone(),
            markers.clone(),
            period.max(MIN_CATCH_UP_PERIOD),
        ));
        Ok(Self { primary, listener: None, marker_prefix, markers, sender })
    }

    async fn next_impl(&mut self) -> Result<KelChange, StoreError> {
        loop {
            let Some(listener) = self.listener.as_mut() else {
                // Connect on the current primary; the markers go there too (from its pool).
                let mut listener = PgListener::connect_with(&self.primary.pool())
                    .await
                    .map_err(|e| self.failed(e))?;
                listener.eager_reconnect(false);
                listener.listen(CHANNEL).await.map_err(|e| self.failed(e))?;
                self.markers.restart();
                self.listener = Some(listener);
                return Ok(KelChange::Gap);
            };
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let payload = notification.payload();
                    if let Some(n) = payload.strip_prefix(&self.marker_prefix) {
                        if let Some(at) = n.parse().ok().and_then(|n| self.markers.received(n)) {
                            return Ok(KelChange::CaughtUp(at));
                        }
                    } else if !payload.starts_with("ping:") {
                        return Ok(KelChange::Changed(payload.to_owned()));
                    }
                }
                // The connection is gone, and with it what was sent meanwhile: reconnect.
                Ok(None) => self.listener = None,
                Err(e) => {
                    self.listener = None;
                    return Err(self.failed(e));
                }
            }
        }
    }
}

impl PgKelFeed {
    /// A failure of the listening session: a closed pool is the store closing (the feed ends
    /// with [`StoreError::Closed`]); a lost server starts the search for the primary, as any
    /// request's failure does, so that an idle node follows a failover too.
    fn failed(&self, e: sqlx::Error) -> StoreError {
        if matches!(e, sqlx::Error::PoolClosed) {
            return StoreError::Closed;
        }
        let e = StoreError::from(e);
        self.primary.on_error(&e);
        e
    }
}

impl KelChangeFeed for PgKelFeed {
    fn next(&mut self) -> StoreFuture<'_, KelChange> {
        Box::pin(self.next_impl())
    }
}

/// Sends a marker every `period` while the feed lives. A marker that fails to send is simply
/// missing: the feed then reports no catching up, and its reader stops trusting its cache.
async fn send_markers(
    primary: Arc<Primary>,
    prefix: String,
    markers: Arc<Markers>,
    period: Duration,
) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let n = markers.sending();
        let pool = primary.pool();
        let send = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{prefix}{n}"))
            .execute(&pool);
        // Bounded, so that a connection the network dropped without a word does not stop the
        // markers for as long as TCP takes to give up.
        match tokio::time::timeout(primary.config().statement_timeout, send).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "a key event log feed marker was not sent"),
            Err(_) => tracing::debug!("a key event log feed marker timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Markers;

    #[test]
    fn only_markers_sent_after_the_listen_count() {
        let markers = Markers::default();
        let before = markers.sending();
        markers.restart();
        let after = markers.sending();
        assert_eq!(markers.received(before), None);
        assert!(markers.received(after).is_some());
    }

    #[test]
    fn a_marker_counts_once_and_drops_the_older_ones() {
        let markers = Markers::default();
        let first = markers.sending();
        let second = markers.sending();
        let third = markers.sending();
        let at = markers.received(second).expect("second counts");
        assert_eq!(markers.received(first), None, "older than one received");
        assert_eq!(markers.received(second), None, "already received");
        let later = markers.received(third).expect("third counts");
        assert!(later >= at);
    }
}
