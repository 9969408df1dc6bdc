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
    kind            TEXT NOT NULL CHECK (kind IN ('github-app', 'oauth-app')),
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

-- One row per access token and the refresh token issued with it. A family is the chain of
-- pairs linked by rotation; its first pair has family_id NULL and names the family by its id.
CREATE TABLE token_pairs (
    id                 INTEGER PRIMARY KEY,
    family_id          INTEGER,
    app_id             INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id            INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes             TEXT NOT NULL,
    access_digest      BLOB NOT NULL UNIQUE,
    access_last_eight  TEXT NOT NULL,
    access_expires_at  INTEGER,
    refresh_digest     BLOB UNIQUE,
    refresh_expires_at INTEGER,
    state              TEXT NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'rotated', 'revoked')),
    -- After a rotation: the refresh token that replaced this one, and the successor's answer
    -- encrypted under this pair's refresh token (for the grace replay).
    successor_refresh  BLOB,
    successor_sealed   BLOB,
    rotated_at         INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX token_pairs_family ON token_pairs (family_id);
CREATE INDEX token_pairs_grant ON token_pairs (app_id, user_id);
