-- Every write to a key event log's head is announced on channel atp_kel_changed when its
-- transaction commits, so that the nodes' caches drop the log at once (docs/ha.md, "Cache
-- coherence"; src/pg/feed.rs). A trigger, so that no write path can forget it.
CREATE FUNCTION atp_notify_kel_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('atp_kel_changed', OLD.did);
    ELSE
        PERFORM pg_notify('atp_kel_changed', NEW.did);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER identities_kel_changed
    AFTER INSERT OR UPDATE OR DELETE ON identities
    FOR EACH ROW EXECUTE FUNCTION atp_notify_kel_change();
