-- Retention and floods. The trail becomes a table partitioned by month (UTC),
-- so that an operator ends old history by dropping a whole partition as the
-- owner (`moreidctl audit prune --before DATE`) while no row is ever changed
-- or deleted. A row may now stand for several identical events (same event,
-- outcome, detail, user, key, client IP and component within one aggregation
-- window of the writer): count says how many, at is the first, last_at the
-- last (NULL for a single event).
--
-- The rows of the first version are copied, ids kept: a one-time cost.

-- +goose Up
ALTER TABLE audit_events RENAME TO audit_events_v1;
ALTER INDEX audit_events_pkey RENAME TO audit_events_v1_pkey;
ALTER INDEX audit_events_user_at RENAME TO audit_events_v1_user_at;
ALTER INDEX audit_events_at RENAME TO audit_events_v1_at;

CREATE TABLE audit_events (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    event      text        NOT NULL,
    outcome    text        NOT NULL,
    user_id    text        NOT NULL DEFAULT '',
    api_key_id bigint,
    client_ip  text        NOT NULL DEFAULT '',
    component  text        NOT NULL DEFAULT '',
    request_id text        NOT NULL DEFAULT '',
    detail     text        NOT NULL DEFAULT '',
    count      integer     NOT NULL DEFAULT 1 CHECK (count >= 1),
    last_at    timestamptz,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);

CREATE INDEX audit_events_user_at ON audit_events (user_id, at DESC);
CREATE INDEX audit_events_at ON audit_events (at DESC);

-- The parent refuses UPDATE, DELETE and TRUNCATE as before. Postgres fires a
-- statement trigger only for the table a statement names, so every
-- partition gets its own (audit_ensure_partition) for statements naming it.
CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- audit_ensure_partition creates the partition of the month (UTC) holding
-- at, named audit_events_pYYYYMM, unless it exists. The writer calls it
-- before it first appends to a month; it runs as the owner (SECURITY
-- DEFINER) because only a table's owner may add a partition, and it can do
-- nothing else: create an empty table of the trail. EXECUTE is granted to
-- the serving role only (audit.Schema).
-- +goose StatementBegin
CREATE FUNCTION audit_ensure_partition(at timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    lo   timestamp := date_trunc('month', at AT TIME ZONE 'UTC');
    name text      := 'audit_events_p' || to_char(lo, 'YYYYMM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN;
    END IF;
    -- Writers of every service may race for a new month.
    PERFORM pg_advisory_xact_lock(hashtext('audit_ensure_partition'));
    IF to_regclass(name) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
        name, lo AT TIME ZONE 'UTC', (lo + interval '1 month') AT TIME ZONE 'UTC');
    EXECUTE format('CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON %I '
        'FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()', name);
END;
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION audit_ensure_partition(timestamptz) FROM PUBLIC;

-- +goose StatementBegin
DO $$
DECLARE
    m timestamptz;
BEGIN
    FOR m IN SELECT DISTINCT date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM audit_events_v1
             UNION SELECT clock_timestamp() LOOP
        PERFORM audit_ensure_partition(m);
    END LOOP;
END;
$$;
-- +goose StatementEnd

INSERT INTO audit_events (id, at, event, outcome, user_id, api_key_id, client_ip, component, request_id, detail)
    OVERRIDING SYSTEM VALUE
    SELECT id, at, event, outcome, user_id, api_key_id, client_ip, component, request_id, detail FROM audit_events_v1;
SELECT setval(pg_get_serial_sequence('audit_events', 'id'), coalesce((SELECT max(id) FROM audit_events_v1), 0) + 1, false);
DROP TABLE audit_events_v1;

-- +goose Down
-- Partitions of the trail keep their rows; going back copies them, counts
-- folded away.
ALTER TABLE audit_events RENAME TO audit_events_v2;
ALTER INDEX audit_events_user_at RENAME TO audit_events_v2_user_at;
ALTER INDEX audit_events_at RENAME TO audit_events_v2_at;
CREATE TABLE audit_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    event      text        NOT NULL,
    outcome    text        NOT NULL,
    user_id    text        NOT NULL DEFAULT '',
    api_key_id bigint,
    client_ip  text        NOT NULL DEFAULT '',
    component  text        NOT NULL DEFAULT '',
    request_id text        NOT NULL DEFAULT '',
    detail     text        NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_user_at ON audit_events (user_id, at DESC);
CREATE INDEX audit_events_at ON audit_events (at DESC);
INSERT INTO audit_events (id, at, event, outcome, user_id, api_key_id, client_ip, component, request_id, detail)
    OVERRIDING SYSTEM VALUE
    SELECT id, at, event, outcome, user_id, api_key_id, client_ip, component, request_id, detail FROM audit_events_v2;
SELECT setval(pg_get_serial_sequence('audit_events', 'id'), coalesce((SELECT max(id) FROM audit_events_v2), 0) + 1, false);
DROP TABLE audit_events_v2;
CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
DROP FUNCTION audit_ensure_partition(timestamptz);
