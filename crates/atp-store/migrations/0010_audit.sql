-- The audit trail (docs/audit.md). Each row is one event's canonical JSON (`body`) and its
-- digest, written in the transaction of the change it records. `batch` and `chain` are set when
-- the row is sealed: the batch's number and the row's chain value (atp_core::audit). A sealed
-- batch's head goes into the transparency log as an `audit-batch` leaf (`log_index`).
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms     BIGINT  NOT NULL,
    code        TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    digest      BLOB    NOT NULL,
    batch       BIGINT,
    chain       BLOB
);

CREATE INDEX audit_events_unsealed ON audit_events (seq) WHERE batch IS NULL;
CREATE INDEX audit_events_by_time ON audit_events (time_ms);
CREATE INDEX audit_events_by_batch ON audit_events (batch, seq);

CREATE TABLE audit_batches (
    batch_number  BIGINT  NOT NULL PRIMARY KEY,
    first_seq     BIGINT  NOT NULL,
    last_seq      BIGINT  NOT NULL,
    event_count   BIGINT  NOT NULL,
    previous      BLOB    NOT NULL,
    head          BLOB    NOT NULL,
    log_index     BIGINT  NOT NULL,
    sealed_at_ms  BIGINT  NOT NULL
);
