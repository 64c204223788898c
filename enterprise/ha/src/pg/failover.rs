//! Following the writable primary: sqlx has no multi-host connection strings, so the store
//! keeps the list of candidate servers itself. It connects to the first that is a writable
//! primary (`pg_is_in_recovery()` is false), and when a statement fails the way a lost or
//! demoted server fails (a broken connection, an administrator shutdown, a read-only
//! transaction on a server that became a standby), it looks for the primary again in the
//! background and swaps the pool, without a restart. Requests in the meantime fail and are
//! retried by their callers; none is retried here, because a write whose answer was lost may
//! have committed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use atp_store::StoreError;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection, PgPool};

use super::PgConfig;

/// How long one search for the primary goes on before it gives up (the next failure starts
/// another), and how long it waits between rounds over the candidates.
const SEARCH_DEADLINE: Duration = Duration::from_secs(60);
const SEARCH_PAUSE: Duration = Duration::from_millis(250);

/// The current primary's pool and the candidates to search when it is lost.
#[derive(Debug)]
pub(super) struct Primary {
    pool: RwLock<PgPool>,
    /// The index in `candidates` of the server `pool` connects to: searched first, so that a
    /// node stays on its server while that is still the writable primary.
    current: std::sync::atomic::AtomicUsize,
    candidates: Vec<PgConnectOptions>,
    config: PgConfig,
    searching: AtomicBool,
}

/// Whether the server accepts writes: a primary, not a standby in recovery.
pub(super) async fn is_writable(options: &PgConnectOptions) -> Result<bool, sqlx::Error> {
    let mut conn = PgConnection::connect_with(options).await?;
    let in_recovery: bool =
        sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(&mut conn).await?;
    let _ = conn.close().await;
    Ok(!in_recovery)
}

/// A failure that says the server may be gone or no longer the primary: a database failure
/// of [`StoreError::is_unavailable`].
///
/// A pool timeout is one: sqlx retries a refused connection until the acquire timeout and then
/// reports only the timeout, so a primary that is down for good shows itself this way once the
/// pool's connections have been dropped. Load times out the same way; that is why a search
/// first asks the current server and keeps its pool while it is still the writable primary.
/// A lock-wait or statement timeout is not one.
pub(super) fn is_connection_error(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(_)) && e.is_unavailable()
}

fn pool_options(config: &PgConfig) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(config.pool_size.max(1))
        .acquire_timeout(config.acquire_timeout)
}

impl Primary {
    /// Connects to the first candidate that is a writable primary; `Err` with why each was
    /// passed over when none is.
    pub(super) async fn find(
        candidates: Vec<PgConnectOptions>,
        config: PgConfig,
    ) -> Result<Self, Vec<String>> {
        let mut reasons = Vec::new();
        for (index, options) in candidates.iter().enumerate() {
            match Self::try_candidate(options, &config).await {
                Ok(pool) => {
                    return Ok(Self {
                        pool: RwLock::new(pool),
                        current: std::sync::atomic::AtomicUsize::new(index),
                        candidates,
                        config,
                        searching: AtomicBool::new(false),
                    });
                }
                Err(reason) => reasons.push(reason),
            }
        }
        Err(reasons)
    }

    async fn try_candidate(
        options: &PgConnectOptions,
        config: &PgConfig,
    ) -> Result<PgPool, String> {
        let name = format!("{}:{}", options.get_host(), options.get_port());
        match tokio::time::timeout(config.acquire_timeout, is_writable(options)).await {
            Ok(Ok(true)) => pool_options(config)
                .connect_with(options.clone())
                .await
                .map_err(|e| format!("{name}: {e}")),
            Ok(Ok(false)) => Err(format!("{name}: a standby (in recovery)")),
            Ok(Err(e)) => Err(format!("{name}: {e}")),
            Err(_) => Err(format!("{name}: no answer within {:?}", config.acquire_timeout)),
        }
    }

    /// The current primary's pool (a cheap handle).
    pub(super) fn pool(&self) -> PgPool {
        self.pool.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Called with every failed request's error: a connection-class failure starts one search
    /// for the primary in the background (not two at once).
    pub(super) fn on_error(self: &Arc<Self>, e: &StoreError) {
        if !is_connection_error(e) || self.searching.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            me.search().await;
            me.searching.store(false, Ordering::SeqCst);
        });
    }

    async fn search(&self) {
        let deadline = tokio::time::Instant::now() + SEARCH_DEADLINE;
        let n = self.candidates.len();
        while tokio::time::Instant::now() < deadline {
            let first = self.current.load(Ordering::SeqCst);
            // The current server first: while it is the writable primary its pool stays (a
            // restarted server's pool reconnects by itself; a loaded one was never lost).
            let probe = is_writable(&self.candidates[first]);
            if let Ok(Ok(true)) = tokio::time::timeout(self.config.acquire_timeout, probe).await {
                return;
            }
            for index in (0..n).map(|i| (first + i) % n).skip(1) {
                let options = &self.candidates[index];
                if let Ok(pool) = Self::try_candidate(options, &self.config).await {
                    self.current.store(index, Ordering::SeqCst);
                    let old = std::mem::replace(
                        &mut *self.pool.write().unwrap_or_else(|p| p.into_inner()),
                        pool,
                    );
                    tracing::warn!(
                        host = %options.get_host(),
                        port = options.get_port(),
                        "PostgreSQL primary (re)connected"
                    );
                    // Requests holding the old pool finish or fail on their own.
                    tokio::spawn(async move { old.close().await });
                    return;
                }
            }
            tokio::time::sleep(SEARCH_PAUSE).await;
        }
        tracing::error!("no writable PostgreSQL primary found within {SEARCH_DEADLINE:?}");
    }

    /// The connection settings (timeouts bound the batch task's waits too).
    pub(super) fn config(&self) -> &PgConfig {
        &self.config
    }

    /// Closes the current pool (the store is closing).
    pub(super) async fn close(&self) {
        self.pool().close().await;
    }
}
