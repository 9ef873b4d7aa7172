-- The OpenID Connect ID token signing keys (SPEC section 8). Every auth
-- replica reads the same rows and decides from them and the clock which key
-- signs and which are published, so nothing else needs coordinating. The
-- private part is only ever stored sealed under MOREID_KEY_ENCRYPTION_KEY.

-- +goose Up
CREATE TABLE oidc_signing_keys (
    kid         text PRIMARY KEY,          -- random, base64url of 16 bytes
    alg         text NOT NULL DEFAULT 'RS256',
    public_jwk  jsonb NOT NULL,
    private_enc bytea NOT NULL,            -- AES-256-GCM nonce||ciphertext of the PKCS#8 DER, AAD = kid
    kek_id      text NOT NULL,             -- first 8 hex of SHA-256(KEK): which KEK, revealing nothing
    created_at  timestamptz NOT NULL DEFAULT now(),
    activate_at timestamptz NOT NULL,      -- signs from here on
    retired_at  timestamptz                -- when a newer key took (or takes) over
);

-- +goose Down
DROP TABLE oidc_signing_keys;
