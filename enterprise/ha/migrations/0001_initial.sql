-- ATP store schema on PostgreSQL, version 1.
--
-- The same tables, columns and meaning as the embedded SQLite schema (crates/atp-store/migrations,
-- migrations 0001 to 0006 taken together), with PostgreSQL's types: BYTEA for bytes, and key
-- events stored only in their compressed form. One addition: `tlog_head`, the row every write
-- transaction locks first (SELECT ... FOR UPDATE). It serialises the writers of every node on
-- this database, so leaves get contiguous indices in commit order and the log cannot fork, with
-- no leader among the nodes (docs/ha.md).
--
-- Every text column sorts by bytes (COLLATE "C"), as SQLite does: listings are in DID order by
-- bytes, their page tokens compare by bytes, and the role-binding policy that a log leaf hashes
-- is read in byte order whatever the database's default collation is.

CREATE TABLE tlog_leaves (
    leaf_index     BIGINT  NOT NULL PRIMARY KEY,
    kind           TEXT COLLATE "C" NOT NULL,
    data_hash      BYTEA   NOT NULL,
    subject_ref    TEXT COLLATE "C",
    created_at_ms  BIGINT  NOT NULL
);

CREATE TABLE tlog_nodes (
    tree_level     INTEGER NOT NULL,
    node_index     BIGINT  NOT NULL,
    hash           BYTEA   NOT NULL,
    PRIMARY KEY (tree_level, node_index)
);

CREATE INDEX tlog_leaf_by_hash ON tlog_nodes (hash, node_index) WHERE tree_level = 0;

-- The log's size: the one row a write locks before it reads the frontier.
CREATE TABLE tlog_head (
    singleton      INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    size           BIGINT  NOT NULL
);

INSERT INTO tlog_head (singleton, size) VALUES (1, 0);

CREATE TABLE checkpoints (
    tree_size      BIGINT  NOT NULL PRIMARY KEY,
    root_hash      BYTEA   NOT NULL,
    note           TEXT COLLATE "C" NOT NULL,
    created_at_ms  BIGINT  NOT NULL
);

CREATE TABLE identities (
    did            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    seq            BIGINT  NOT NULL,
    digest         TEXT COLLATE "C" NOT NULL,
    deactivated    BOOLEAN NOT NULL,
    created        TEXT COLLATE "C" NOT NULL,
    updated        TEXT COLLATE "C" NOT NULL,
    created_at_ms  BIGINT  NOT NULL,
    updated_at_ms  BIGINT  NOT NULL
);

-- The canonical signed event, raw DEFLATE (RFC 1951), as atp_store::backend::event_codec
-- writes it.
CREATE TABLE kel_events (
    did            TEXT COLLATE "C" NOT NULL REFERENCES identities (did),
    seq            BIGINT  NOT NULL,
    event_type     TEXT COLLATE "C" NOT NULL,
    digest         TEXT COLLATE "C" NOT NULL,
    event_deflate  BYTEA   NOT NULL,
    log_index      BIGINT  NOT NULL REFERENCES tlog_leaves (leaf_index),
    stored_at_ms   BIGINT  NOT NULL,
    PRIMARY KEY (did, seq)
);

CREATE TABLE status_lists (
    list_id        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    issuer         TEXT COLLATE "C" NOT NULL,
    purpose        TEXT COLLATE "C" NOT NULL,
    status_size    BIGINT  NOT NULL,
    entries        BIGINT  NOT NULL,
    bitstring      BYTEA   NOT NULL,
    list_version   BIGINT  NOT NULL,
    allocatable    BOOLEAN NOT NULL,
    next_index     BIGINT  NOT NULL,
    created_at_ms  BIGINT  NOT NULL,
    updated_at_ms  BIGINT  NOT NULL
);

CREATE INDEX status_lists_by_issuer ON status_lists (issuer, purpose, allocatable);

CREATE TABLE status_updates (
    log_index      BIGINT  NOT NULL PRIMARY KEY REFERENCES tlog_leaves (leaf_index),
    list_id        TEXT COLLATE "C" NOT NULL REFERENCES status_lists (list_id),
    update_seq     BIGINT  NOT NULL,
    update_bytes   BYTEA   NOT NULL,
    signature      BYTEA   NOT NULL,
    created_at_ms  BIGINT  NOT NULL,
    UNIQUE (list_id, update_seq)
);

CREATE TABLE trust_anchors (
    did            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    added_at_ms    BIGINT  NOT NULL
);

CREATE TABLE evidence (
    log_index      BIGINT  NOT NULL PRIMARY KEY REFERENCES tlog_leaves (leaf_index),
    subject        TEXT COLLATE "C" NOT NULL,
    evidence_type  TEXT COLLATE "C" NOT NULL,
    body           BYTEA   NOT NULL,
    created_at_ms  BIGINT  NOT NULL
);

CREATE INDEX evidence_by_subject ON evidence (subject, log_index);
CREATE INDEX evidence_by_type ON evidence (evidence_type, subject);

CREATE TABLE trust_evidence (
    log_index      BIGINT  NOT NULL PRIMARY KEY REFERENCES tlog_leaves (leaf_index),
    content_hash   BYTEA   NOT NULL UNIQUE,
    kind           TEXT COLLATE "C" NOT NULL,
    issuer         TEXT COLLATE "C" NOT NULL,
    subject        TEXT COLLATE "C" NOT NULL,
    created_ms     BIGINT  NOT NULL,
    evidence_json  TEXT COLLATE "C" NOT NULL,
    stored_at_ms   BIGINT  NOT NULL
);

CREATE INDEX trust_evidence_by_subject ON trust_evidence (subject, log_index);
CREATE INDEX trust_evidence_by_issuer ON trust_evidence (issuer, log_index);
CREATE INDEX trust_evidence_by_kind ON trust_evidence (kind, log_index);

CREATE TABLE node_meta (
    meta_key       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    meta_value     TEXT COLLATE "C" NOT NULL,
    updated_at_ms  BIGINT  NOT NULL
);

CREATE TABLE store_counters (
    counter_name   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    counter_value  BIGINT  NOT NULL
);

INSERT INTO store_counters (counter_name, counter_value) VALUES ('identities', 0);

CREATE TABLE role_bindings (
    subject        TEXT COLLATE "C" NOT NULL,
    role           TEXT COLLATE "C" NOT NULL,
    domain         TEXT COLLATE "C" NOT NULL,
    added_at_ms    BIGINT  NOT NULL,
    PRIMARY KEY (subject, role, domain)
);

CREATE TABLE role_bindings_revision (
    singleton      INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    revision       BIGINT  NOT NULL
);

INSERT INTO role_bindings_revision (singleton, revision) VALUES (1, 0);
