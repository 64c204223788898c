-- Audit retention (docs/audit.md, "Retention"): when retention removes the events of a batch,
-- its row stays with the time it expired, so that the batches after it still chain on from its
-- head and its log leaf still proves it.
ALTER TABLE audit_batches ADD COLUMN expired_at_ms BIGINT;

-- The oldest batches whose events are kept, for each sealing round's expiry: without it the
-- round would scan every expired row, for ever more of them.
CREATE INDEX audit_batches_unexpired ON audit_batches (batch_number) WHERE expired_at_ms IS NULL;
