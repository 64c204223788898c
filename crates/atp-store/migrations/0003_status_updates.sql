-- External issuers' signed status-list updates (docs/protocol.md §D4), one row per accepted
-- update, keyed by the `status-update` log leaf that commits to it. The update bytes and the
-- signature are kept so that anyone can re-derive the leaf and re-verify the issuer's
-- signature. A list's last accepted `update_seq` is its `status_lists.list_version`.
CREATE TABLE status_updates (
    log_index      BIGINT  NOT NULL PRIMARY KEY REFERENCES tlog_leaves (leaf_index),
    list_id        TEXT    NOT NULL REFERENCES status_lists (list_id),
    update_seq     BIGINT  NOT NULL,
    update_bytes   BLOB    NOT NULL,   -- PG: BYTEA
    signature      BLOB    NOT NULL,   -- PG: BYTEA
    created_at_ms  BIGINT  NOT NULL,
    UNIQUE (list_id, update_seq)
);
