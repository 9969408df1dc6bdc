-- refreshd's first schema. Secrets appear only as SHA-256 digests.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    login       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name        TEXT,
    email       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE apps (
    id              INTEGER PRIMARY KEY,
    client_id       TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('github-app', 'oauth-app', 'google-client')),
    redirect_uri    TEXT NOT NULL,
    secret_digest   BLOB NOT NULL,
    expiring_tokens INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE codes (
    digest                BLOB PRIMARY KEY,
    app_id                INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id               INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes                TEXT NOT NULL,
    redirect_uri          TEXT,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    expires_at            INTEGER NOT NULL,
    redeemed              INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- A token family: one grant of an app to a user, and the chain of pairs its refreshes make.
-- Revoking a family (reuse detected, grant deleted) is one write here.
CREATE TABLE families (
    id          INTEGER PRIMARY KEY,
    app_id      INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    revoked_at  INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX families_grant ON families (app_id, user_id);

-- One row per access token and the refresh token issued with it.
-- state: 0 live, 1 rotated (its refresh token was used), 2 revoked.
-- A rotation changes the old row in place (one conditional update) and appends its
-- successor: with the two digest indexes, three random pages per rotation. No other index is
-- kept on this table.
CREATE TABLE token_pairs (
    id                 INTEGER PRIMARY KEY,
    family_id          INTEGER NOT NULL REFERENCES families (id) ON DELETE CASCADE,
    access_digest      BLOB NOT NULL UNIQUE,
    access_last_eight  TEXT NOT NULL,
    access_expires_at  INTEGER,
    refresh_digest     BLOB UNIQUE,
    refresh_expires_at INTEGER,
    state              INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
    rotated_at         INTEGER NOT NULL DEFAULT 0,
    successor_refresh  BLOB,           -- the refresh digest of the pair that replaced this one
    -- This pair's answer, encrypted under its predecessor's refresh token, for the grace replay.
    replay_sealed      BLOB,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
