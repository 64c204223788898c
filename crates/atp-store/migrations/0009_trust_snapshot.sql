-- The trust snapshot of a cluster (docs/ha.md, "Trust recomputation"): one row, written by the
-- holder of the `trust-recompute` lease in a write fenced by it, read by the other nodes.
-- `body` is the `atp_core::trust_snapshot` layout; `revision` grows by one with every write.
-- A single SQLite node computes its own snapshot and never writes this table.
CREATE TABLE trust_snapshot (
    singleton       INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    revision        BIGINT  NOT NULL,
    computed_at_ms  BIGINT  NOT NULL,
    body            BLOB    NOT NULL
);
