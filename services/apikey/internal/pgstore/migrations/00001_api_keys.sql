-- +goose Up
-- api_keys holds issued API keys. The key itself is never stored: key_hash is
-- its SHA-256 in lowercase hex, the only form in which it is looked up.
CREATE TABLE api_keys (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_hash       char(64)    NOT NULL,
    prefix         text        NOT NULL,
    name           text        NOT NULL,
    whitelist      text[]      NOT NULL DEFAULT '{}',
    password_login boolean     NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz NULL,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_key_hash_hex CHECK (key_hash ~ '^[0-9a-f]{64}$')
);

-- +goose Down
DROP TABLE api_keys;
