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

-- Leaf hashes are the level-0 nodes: this index answers "which leaf has this hash?" (an
-- inclusion proof by hash) in O(log n) instead of a scan.
CREATE INDEX tlog_leaf_by_hash ON tlog_nodes (hash, node_index) WHERE tree_level = 0;
