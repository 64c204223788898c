-- Leases on singleton jobs (docs/ha.md): one row per job. `epoch` is incremented by every
-- change of holder and every take-over after expiry; a write fenced by a lease checks holder,
-- epoch and expiry in its own transaction. `valid_until_ms` is in the database's clock (on
-- SQLite, the one node's clock).
CREATE TABLE leases (
    name            TEXT    NOT NULL PRIMARY KEY,
    holder          TEXT    NOT NULL,
    epoch           BIGINT  NOT NULL,
    valid_until_ms  BIGINT  NOT NULL
);
