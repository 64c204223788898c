//! [`KelChangeFeed`]: how a node learns that another node changed a key event log, so that it
//! can serve the logs it cached without asking the store on every read (docs/ha.md, "Cache
//! coherence").

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use crate::error::Result;

/// The fastest a feed may prove that it has caught up ([`KelChange::CaughtUp`]); a shorter
/// period asked of [`crate::Store::kel_change_feed`] is raised to this.
pub const MIN_CATCH_UP_PERIOD: Duration = Duration::from_millis(5);

/// One report of a [`KelChangeFeed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KelChange {
    /// The key event log of this DID changed (an event was appended), by any writer of the
    /// store, this process included.
    Changed(String),
    /// Every change committed before this instant (of this process's monotonic clock) has been
    /// reported.
    CaughtUp(Instant),
    /// Changes may have been missed: the feed has just (re)connected. Whatever was cached
    /// before must be dropped. Reported first by a new feed, and again after every lost
    /// connection, before any later report.
    Gap,
}

/// The changes that every writer of a shared store makes to key event logs, in the order they
/// committed.
pub trait KelChangeFeed: Send {
    /// The next report. After an `Err` (the database is unreachable) the caller may call again:
    /// the feed reconnects and reports [`KelChange::Gap`] first.
    ///
    /// The future is a `crate::StoreFuture`, written out: the store module names this trait,
    /// so this module does not name the store's (no import cycle).
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Result<KelChange>> + Send + '_>>;
}
