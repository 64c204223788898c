-- Leases on singleton jobs (docs/ha.md): one row per job. `epoch` is incremented by every
-- change of holder and every take-over after expiry; a write fenced by a lease checks holder,
-- epoch and expiry in its own transaction, under the log's head row lock. `valid_until_ms` is
-- in the database's clock (clock_timestamp()), never a node's.
CREATE TABLE leases (
    name            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    holder          TEXT COLLATE "C" NOT NULL,
    epoch           BIGINT  NOT NULL,
    valid_until_ms  BIGINT  NOT NULL
);
