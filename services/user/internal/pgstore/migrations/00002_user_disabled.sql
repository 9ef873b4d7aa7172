-- +goose Up
-- An operator can disable an account: a disabled user cannot sign in and
-- their profile cannot be changed. disabled_at records when, for audits; it
-- is set while disabled and cleared on re-enabling.
ALTER TABLE users
    ADD COLUMN disabled    boolean     NOT NULL DEFAULT false,
    ADD COLUMN disabled_at timestamptz,
    ADD CONSTRAINT users_disabled_at_iff_disabled CHECK (disabled = (disabled_at IS NOT NULL));

-- +goose Down
ALTER TABLE users
    DROP CONSTRAINT users_disabled_at_iff_disabled,
    DROP COLUMN disabled_at,
    DROP COLUMN disabled;
