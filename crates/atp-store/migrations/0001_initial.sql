-- ATP store schema, version 1.
--
-- Portable SQL: the same text runs on SQLite and (with the changes marked "PG:") PostgreSQL.
-- Integers are BIGINT (64-bit on both; PostgreSQL's INTEGER is only 32-bit), times are Unix
-- milliseconds computed by the node (no database date functions), booleans are BOOLEAN (SQLite
-- stores 0/1), and no table relies on SQLite's rowid.
--
-- Nothing here is ever updated in place except the summary rows (identities, status_lists,
-- store_counters, node_meta): events, log leaves, tree nodes and checkpoints are append-only.

-- The transparency log: one row per leaf. The leaf itself is hashed from (kind, data_hash)
-- only; subject_ref points to the data in this store and can be erased.
CREATE TABLE tlog_leaves (
    leaf_index     BIGINT  NOT NULL PRIMARY KEY,
    kind           TEXT    NOT NULL,
    data_hash      BLOB    NOT NULL,   -- PG: BYTEA
    subject_ref    TEXT,
    created_at_ms  BIGINT  NOT NULL
);

-- Hashes of the complete perfect subtrees of the log: node (tree_level, node_index) covers
-- leaves [node_index * 2^tree_level, (node_index + 1) * 2^tree_level). Level 0 holds the leaf
-- hashes. Written in the transaction that completes the subtree, never changed.
CREATE TABLE tlog_nodes (
    tree_level     INTEGER NOT NULL,
    node_index     BIGINT  NOT NULL,
    hash           BLOB    NOT NULL,   -- PG: BYTEA
    PRIMARY KEY (tree_level, node_index)
);

-- Signed checkpoints (C2SP signed notes), one per tree size.
CREATE TABLE checkpoints (
    tree_size      BIGINT  NOT NULL PRIMARY KEY,
    root_hash      BLOB    NOT NULL,   -- PG: BYTEA
    note           TEXT    NOT NULL,
    created_at_ms  BIGINT  NOT NULL
);

-- One row per DID: the head of its key event log.
CREATE TABLE identities (
    did            TEXT    NOT NULL PRIMARY KEY,
    seq            BIGINT  NOT NULL,
    digest         TEXT    NOT NULL,
    deactivated    BOOLEAN NOT NULL,
    created        TEXT    NOT NULL,   -- ts of the inception event
    updated        TEXT    NOT NULL,   -- ts of the latest event
    created_at_ms  BIGINT  NOT NULL,
    updated_at_ms  BIGINT  NOT NULL
);

-- The key events, exactly as accepted (canonical JSON of {"event", "sig"}).
CREATE TABLE kel_events (
    did            TEXT    NOT NULL REFERENCES identities (did),
    seq            BIGINT  NOT NULL,
    event_type     TEXT    NOT NULL,
    digest         TEXT    NOT NULL,
    event_json     TEXT    NOT NULL,
    log_index      BIGINT  NOT NULL REFERENCES tlog_leaves (leaf_index),
    stored_at_ms   BIGINT  NOT NULL,
    PRIMARY KEY (did, seq)
);

-- Bitstring status lists (uncompressed bitstrings).
CREATE TABLE status_lists (
    list_id        TEXT    NOT NULL PRIMARY KEY,
    issuer         TEXT    NOT NULL,
    purpose        TEXT    NOT NULL,
    status_size    INTEGER NOT NULL,
    entries        BIGINT  NOT NULL,
    bitstring      BLOB    NOT NULL,   -- PG: BYTEA
    list_version   BIGINT  NOT NULL,
    allocatable    BOOLEAN NOT NULL,
    next_index     BIGINT  NOT NULL,
    created_at_ms  BIGINT  NOT NULL,
    updated_at_ms  BIGINT  NOT NULL
);

CREATE INDEX status_lists_by_issuer ON status_lists (issuer, purpose, allocatable);

-- The operator's trust anchors (replaced as a set).
CREATE TABLE trust_anchors (
    did            TEXT    NOT NULL PRIMARY KEY,
    added_at_ms    BIGINT  NOT NULL
);

-- Trust evidence (signed bytes), keyed by the log leaf that commits to it.
CREATE TABLE evidence (
    log_index      BIGINT  NOT NULL PRIMARY KEY REFERENCES tlog_leaves (leaf_index),
    subject        TEXT    NOT NULL,
    evidence_type  TEXT    NOT NULL,
    body           BLOB    NOT NULL,   -- PG: BYTEA
    created_at_ms  BIGINT  NOT NULL
);

CREATE INDEX evidence_by_subject ON evidence (subject, log_index);

-- Node configuration that lives with the data (the node's DID, the log origin, ...).
CREATE TABLE node_meta (
    meta_key       TEXT    NOT NULL PRIMARY KEY,
    meta_value     TEXT    NOT NULL,
    updated_at_ms  BIGINT  NOT NULL
);

-- Counters kept in step with their tables, so that counts cost one read.
CREATE TABLE store_counters (
    counter_name   TEXT    NOT NULL PRIMARY KEY,
    counter_value  BIGINT  NOT NULL
);

INSERT INTO store_counters (counter_name, counter_value) VALUES ('identities', 0);
