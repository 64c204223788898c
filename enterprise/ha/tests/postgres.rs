//! `atp-enterprise-ha` against real PostgreSQL servers (Debian's package, started by the tests
//! in temporary directories on 127.0.0.1), in one test binary so that the crate's tests link
//! once: the store conformance suite, the key event log change feed, following the primary, the hostile-input table through a
//! node on `PgStore`, and TLS to the database.
//!
//! Without PostgreSQL each test fails under `CI=true` and is skipped loudly otherwise.

#[path = "postgres/conformance.rs"]
mod conformance;
#[path = "postgres/failover.rs"]
mod failover;
#[path = "postgres/feed.rs"]
mod feed;
#[path = "postgres/hostile.rs"]
mod hostile;
#[path = "postgres/tls.rs"]
mod tls;
