//! ATP enterprise edition: high availability.
//!
//! A node on the embedded SQLite store is one process over one file. This crate lets nodes be
//! stateless instead: [`PgStore`] implements the whole [`atp_store::Store`] trait on
//! PostgreSQL, so that any number of nodes share one database, and the database's own
//! replication (streaming replicas, Patroni, a managed service) carries the availability of the
//! data. ATP runs no consensus of its own.
//!
//! - [`PgStore`]: the store. Every write is one transaction that first locks the log's head
//!   row, so writers on every node are serialised by the database and the log gets contiguous
//!   indices with no fork and no leader.
//! - [`HaConfig`]: the node's `[ha]` section; [`HaConfig::connect`] opens the store on the
//!   first listed host that is a writable primary.
//! - The schema is in `enterprise/ha/migrations`, applied when the store connects.
//!
//! Licensed under LICENSE-ENTERPRISE, not the open core's Apache-2.0.
#![forbid(unsafe_code)]

mod config;
mod pg;

pub use config::{DbTls, HaConfig, HaError, MAX_HOSTS, MAX_POOL_SIZE, MIN_KEL_CACHE_STALENESS_MS};
pub use pg::{ConnectError, PgConfig, PgStore};
