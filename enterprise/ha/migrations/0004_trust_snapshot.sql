-- The trust snapshot of the cluster (docs/ha.md, "Trust recomputation"): one row, written by
-- the holder of the `trust-recompute` lease in a write fenced by it (the lease row is locked
-- FOR UPDATE, not the log's head row, so appends never wait on a snapshot), read by the other
-- nodes. `body` is the `atp_core::trust_snapshot` layout; `revision` grows by one per write.
CREATE TABLE trust_snapshot (
    singleton       SMALLINT NOT NULL PRIMARY KEY CHECK (singleton = 1),
    revision        BIGINT   NOT NULL,
    computed_at_ms  BIGINT   NOT NULL,
    body            BYTEA    NOT NULL
);
