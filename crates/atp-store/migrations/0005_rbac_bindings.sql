-- Role bindings of the enterprise RBAC policy (docs/enterprise.md): `subject` (`group:<name>` or
-- `user:<sub>`) has `role` in `domain` (a tenant, or `*` for every tenant). They live in the
-- store so that every node of a cluster enforces the same policy; the built-in role
-- permissions are code, not rows. The store checks only the shape of the strings; the RBAC
-- crate decides what a valid role or subject is.
CREATE TABLE role_bindings (
    subject        TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    domain         TEXT    NOT NULL,
    added_at_ms    BIGINT  NOT NULL,
    PRIMARY KEY (subject, role, domain)
);

-- One row: the policy's revision, incremented by every write that changes a binding, so that a
-- node notices a change (made by itself or by another node on the same database) with one
-- point read. 0: the policy was never written (the node may seed it from its configuration).
CREATE TABLE role_bindings_revision (
    singleton      INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
    revision       BIGINT  NOT NULL
);

INSERT INTO role_bindings_revision (singleton, revision) VALUES (1, 0);
