-- Typed, signed trust evidence (docs/protocol.md Part G, docs/trust.md), one row per accepted
-- body, keyed by the `evidence` log leaf that commits to it (its data hash is the content hash).
-- `content_hash` = SHA-256(JCS(body)) is UNIQUE: the same body submitted again (even with other,
-- randomised signatures) is the same evidence, and the store answers with the first row.
-- The signed JSON is kept as submitted so that anyone can re-verify it.
CREATE TABLE trust_evidence (
    log_index      BIGINT  NOT NULL PRIMARY KEY REFERENCES tlog_leaves (leaf_index),
    content_hash   BLOB    NOT NULL UNIQUE,   -- PG: BYTEA
    kind           TEXT    NOT NULL,
    issuer         TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    created_ms     BIGINT  NOT NULL,          -- the body's `created`
    evidence_json  TEXT    NOT NULL,
    stored_at_ms   BIGINT  NOT NULL
);

-- ListEvidence filters (newest first: descending log index within each filter).
CREATE INDEX trust_evidence_by_subject ON trust_evidence (subject, log_index);
CREATE INDEX trust_evidence_by_issuer ON trust_evidence (issuer, log_index);
CREATE INDEX trust_evidence_by_kind ON trust_evidence (kind, log_index);
