-- +goose Up
-- users holds every MoreLine account. id is the numeric identifier apps see
-- (an int32 in the API, hence integer); user_id is the login name.
CREATE TABLE users (
    id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       text        NOT NULL,
    username      text        NOT NULL,
    email         text        NOT NULL,
    bio           text        NOT NULL DEFAULT '',
    avatar_url    text,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_user_id_key UNIQUE (user_id),
    -- Last line of defence behind the service's validation.
    CONSTRAINT users_user_id_len CHECK (char_length(user_id) BETWEEN 1 AND 64),
    CONSTRAINT users_username_len CHECK (char_length(username) BETWEEN 1 AND 32),
    CONSTRAINT users_email_len CHECK (char_length(email) BETWEEN 1 AND 254),
    CONSTRAINT users_bio_len CHECK (char_length(bio) <= 500),
    CONSTRAINT users_password_hash_phc CHECK (password_hash LIKE '$argon2id$%')
);

-- +goose Down
DROP TABLE users;
