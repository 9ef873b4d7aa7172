-- The audit trail: one row per security event, never a secret. Rows are
-- only ever added; the triggers below make Postgres itself refuse UPDATE,
-- DELETE and TRUNCATE, so neither a bug nor a compromised service account
-- can rewrite history through ordinary statements. (Retention: whole
-- monthly partitions dropped by the owner, see 00002.)

-- +goose Up
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

-- "What happened to this user lately" and "what happened lately".
CREATE INDEX audit_events_user_at ON audit_events (user_id, at DESC);
CREATE INDEX audit_events_at ON audit_events (at DESC);

-- +goose StatementBegin
CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

-- Statement-level, so that even an UPDATE or DELETE that matches no row is
-- refused: nothing may try.
CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- +goose Down
DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();
