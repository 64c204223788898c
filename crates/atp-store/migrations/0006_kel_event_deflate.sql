-- Signed key events are stored raw-DEFLATE-compressed (RFC 1951). Their canonical JSON is mostly
-- base64url / base58 text of composite keys and signatures, which DEFLATE brings to about 76 %
-- of its size: the store's bytes per identity went from 8.6 KiB to under 8 KiB
-- (docs/benchmarks.md). The bytes inflate to exactly the canonical JSON that was verified.
-- Rows written before this migration keep their `event_json` and have no `event_deflate`; new
-- rows have `event_json` = '' and the compressed form here.
ALTER TABLE kel_events ADD COLUMN event_deflate BLOB;  -- PG: BYTEA
