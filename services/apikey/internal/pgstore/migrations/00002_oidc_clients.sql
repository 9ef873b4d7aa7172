-- +goose Up
-- Every API key is also an OAuth 2.0 / OpenID Connect client (SPEC section
-- 8). client_id is its public identifier: random, never derived from the
-- key, so that publishing it (in redirects, ID tokens, logs) reveals nothing
-- about the secret. The service makes it for new keys ("mlc_" and 32 hex
-- from crypto/rand); existing keys get one here, from gen_random_uuid's 122
-- random bits. The volatile default is evaluated per row and dropped again
-- at once, so that an insert that forgets the column fails instead of
-- silently getting an id the service did not choose.
ALTER TABLE api_keys
    ADD COLUMN client_id text NOT NULL DEFAULT ('mlc_' || replace(gen_random_uuid()::text, '-', '')),
    ADD COLUMN public boolean NOT NULL DEFAULT false,
    ADD COLUMN redirect_uris text[] NOT NULL DEFAULT '{}',
    ADD COLUMN post_logout_redirect_uris text[] NOT NULL DEFAULT '{}';
ALTER TABLE api_keys ALTER COLUMN client_id DROP DEFAULT;
-- The format check keeps anything odd out of the column the front channel
-- looks clients up by; the unique index is that lookup.
ALTER TABLE api_keys
    ADD CONSTRAINT api_keys_client_id_key UNIQUE (client_id),
    ADD CONSTRAINT api_keys_client_id_format CHECK (client_id ~ '^mlc_[0-9a-f]{32}$');
-- The serving role's table-level grants (pgstore.Schema) cover the new
-- columns; api_keys has no triggers.

-- +goose Down
ALTER TABLE api_keys
    DROP COLUMN post_logout_redirect_uris,
    DROP COLUMN redirect_uris,
    DROP COLUMN public,
    DROP COLUMN client_id;
