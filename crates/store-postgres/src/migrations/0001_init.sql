-- refreshd's schema on PostgreSQL: the same tables as on SQLite. Times are Unix seconds;
-- tokens, codes, secrets and keys appear only as SHA-256 digests.
CREATE TABLE users (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login       TEXT NOT NULL,
    name        TEXT,
    email       TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
-- Logins are unique and found regardless of case, as GitHub's are.
CREATE UNIQUE INDEX users_login ON users (lower(login));

CREATE TABLE apps (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id       TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('github-app', 'oauth-app', 'google-client')),
    redirect_uri    TEXT NOT NULL,
    secret_digest   BYTEA NOT NULL,
    expiring_tokens BOOLEAN NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE codes (
    digest                BYTEA PRIMARY KEY,
    app_id                BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id               BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes                TEXT NOT NULL,
    redirect_uri          TEXT,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    expires_at            BIGINT NOT NULL,
    redeemed              BOOLEAN NOT NULL DEFAULT false
);

-- A token family: one grant of an app to a user, and the chain of pairs its refreshes make.
CREATE TABLE families (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id      BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    revoked_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX families_grant ON families (app_id, user_id);

-- One row per access token and the refresh token issued with it.
-- state: 0 live, 1 rotated (its refresh token was used), 2 revoked.
CREATE TABLE token_pairs (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    family_id          BIGINT NOT NULL REFERENCES families (id) ON DELETE CASCADE,
    access_digest      BYTEA NOT NULL UNIQUE,
    access_last_eight  TEXT NOT NULL,
    access_expires_at  BIGINT,
    refresh_digest     BYTEA UNIQUE,
    refresh_expires_at BIGINT,
    state              SMALLINT NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
    rotated_at         BIGINT NOT NULL DEFAULT 0,
    successor_refresh  BYTEA,
    -- This pair's answer, encrypted under its predecessor's refresh token, for the grace replay.
    replay_sealed      BYTEA,
    -- When every token of the pair has expired and the sweep may delete it; NULL: never.
    dead_after         BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX token_pairs_dead_after ON token_pairs (dead_after) WHERE dead_after IS NOT NULL;

-- The broker's tables.
CREATE TABLE api_keys (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL,
    digest      BYTEA NOT NULL UNIQUE,
    last_four   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE sessions (
    digest      BYTEA PRIMARY KEY,
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- The idempotent-replay vault: answers sealed under HKDF(master key, old refresh token).
CREATE TABLE replays (
    lookup      BYTEA PRIMARY KEY,
    sealed      BYTEA NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX replays_expiry ON replays (expires_at);

-- The broker's single flight across instances: one lease per (upstream, refresh token).
CREATE TABLE leases (
    key         BYTEA PRIMARY KEY,
    holder      BYTEA NOT NULL,
    expires_at  BIGINT NOT NULL
);
