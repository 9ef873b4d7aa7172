-- +goose Up
-- Every changed or deleted row is announced on moreid_users_changed (the
-- payload is its user_id), so that each user-service replica can drop the
-- profile from its in-memory cache. A trigger rather than the service's own
-- NOTIFY: a change made by an operator in psql is announced too, and the
-- notification is sent exactly when the change commits.
-- +goose StatementBegin
CREATE FUNCTION users_notify_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('moreid_users_changed', OLD.user_id);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER users_notify_changed
    AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_notify_changed();

-- +goose Down
DROP TRIGGER users_notify_changed ON users;
DROP FUNCTION users_notify_changed();
