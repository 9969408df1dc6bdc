-- The broker's tables. Keys, sessions and replay keys are SHA-256 digests; replay answers are
-- stored only encrypted.
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    digest      BLOB NOT NULL UNIQUE,
    last_four   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- Sessions handed out by the broker's login endpoints.
CREATE TABLE sessions (
    digest      BLOB PRIMARY KEY,
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- The idempotent-replay vault: a refresh's answer, sealed under a key derived from the
-- master key and the old refresh token, found by a digest of (upstream, caller, old token).
CREATE TABLE replays (
    lookup      BLOB PRIMARY KEY,
    sealed      BLOB NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
