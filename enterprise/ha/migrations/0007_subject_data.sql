-- Erasure by crypto-shredding (docs/audit.md, "Erasure").
--
-- `subject_keys` holds one 256-bit data key per subject; trust evidence about the subject is
-- stored only sealed under it (`trust_evidence.sealed_body`, atp_crypto::sealing; such rows
-- keep `evidence_json` empty). Rows written before this migration keep their plaintext until
-- their subject is erased. Erasing a subject deletes its key and its evidence and records it in
-- `erased_subjects`, with the `erasure` log leaf that commits to it; nothing more about an
-- erased subject is stored.
CREATE TABLE subject_keys (
    subject        TEXT    NOT NULL PRIMARY KEY,
    data_key       BYTEA   NOT NULL,
    created_at_ms  BIGINT  NOT NULL
);

CREATE TABLE erased_subjects (
    subject          TEXT    NOT NULL PRIMARY KEY,
    erased_at_ms     BIGINT  NOT NULL,
    evidence_erased  BIGINT  NOT NULL,
    log_index        BIGINT  NOT NULL REFERENCES tlog_leaves (leaf_index)
);

ALTER TABLE trust_evidence ADD COLUMN sealed_body BYTEA;

-- The rows stored in clear before this migration, which the store seals when it opens: without
-- it every start would scan the whole table to find none.
CREATE INDEX trust_evidence_unsealed ON trust_evidence (log_index) WHERE sealed_body IS NULL;

-- A node of an older version, still running against this schema, would store evidence in clear
-- and would not know erasures: the database refuses such rows, so it fails instead.
CREATE FUNCTION atp_refuse_unsealed_evidence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.sealed_body IS NULL THEN
        RAISE EXCEPTION 'trust evidence must be stored sealed (docs/audit.md, Erasure)';
    END IF;
    IF EXISTS (SELECT 1 FROM erased_subjects WHERE subject = NEW.subject) THEN
        RAISE EXCEPTION 'subject % was erased', NEW.subject;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER trust_evidence_sealed BEFORE INSERT ON trust_evidence
    FOR EACH ROW EXECUTE FUNCTION atp_refuse_unsealed_evidence();
