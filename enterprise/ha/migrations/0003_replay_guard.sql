-- One-time values (envelope nonces, presentation challenges) that the nodes of the cluster have
-- seen, as digests, each kept until the last instant it could still be presented
-- (docs/ha.md). A row past `keep_until_ms` counts as absent and is purged in batches. Writes
-- here never take the log's head row lock: a replay check is one INSERT.
CREATE TABLE replay_guard (
    digest          BYTEA   NOT NULL PRIMARY KEY,
    keep_until_ms   BIGINT  NOT NULL
);

CREATE INDEX replay_guard_by_expiry ON replay_guard (keep_until_ms);
