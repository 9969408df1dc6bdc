-- Connections: users' GitHub and Google grants that refreshd holds and keeps fresh. Their
-- tokens are stored only sealed (XChaCha20-Poly1305 under a key derived from the master key,
-- bound to the connection's id). Ids compare byte for byte (COLLATE "C"), as on SQLite, so
-- paging in id order is the same on both.
CREATE TABLE connections (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    upstream           TEXT NOT NULL CHECK (upstream IN ('github', 'google')),
    status             TEXT NOT NULL CHECK (status IN ('live', 'broken', 'backing_off')),
    scopes             TEXT NOT NULL,
    access_sealed      BYTEA NOT NULL,
    access_expires_at  BIGINT,
    refresh_sealed     BYTEA,
    refresh_expires_at BIGINT,
    last_refreshed_at  BIGINT NOT NULL,
    -- When the refresher looks at it next; NULL: never.
    next_refresh_at    BIGINT,
    failure_count      BIGINT NOT NULL DEFAULT 0,
    last_error         TEXT,
    retry_after        BIGINT,
    -- Who works on it and until when (a claim); a claim whose time has passed binds no one.
    claimed_by         BYTEA,
    claimed_until      BIGINT,
    metadata           TEXT,
    version            BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
-- What the refresher claims: due ones, longest due first. Broken ones are never due.
CREATE INDEX connections_due ON connections (next_refresh_at)
    WHERE next_refresh_at IS NOT NULL AND status <> 'broken';
-- Listing by status or upstream, in id order.
CREATE INDEX connections_by_status ON connections (status, id);
CREATE INDEX connections_by_upstream ON connections (upstream, id);

-- Where connections' versions come from: one sequence for all, so a version never repeats for
-- an id, even one deleted and connected again.
CREATE SEQUENCE connection_versions;
