-- Connections: users' GitHub and Google grants that refreshd holds and keeps fresh. Their
-- tokens are stored only sealed (XChaCha20-Poly1305 under a key derived from the master key,
-- bound to the connection's id). Ids compare byte for byte (BINARY), as on PostgreSQL.
CREATE TABLE connections (
    id                 TEXT PRIMARY KEY,
    upstream           TEXT NOT NULL CHECK (upstream IN ('github', 'google')),
    status             TEXT NOT NULL CHECK (status IN ('live', 'broken', 'backing_off')),
    scopes             TEXT NOT NULL,
    access_sealed      BLOB NOT NULL,
    access_expires_at  INTEGER,
    refresh_sealed     BLOB,
    refresh_expires_at INTEGER,
    last_refreshed_at  INTEGER NOT NULL,
    -- When the refresher looks at it next; NULL: never.
    next_refresh_at    INTEGER,
    failure_count      INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    retry_after        INTEGER,
    -- Who works on it and until when (a claim); a claim whose time has passed binds no one.
    claimed_by         BLOB,
    claimed_until      INTEGER,
    metadata           TEXT,
    version            INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
) WITHOUT ROWID;
-- What the refresher claims: due ones, longest due first. Broken ones are never due.
CREATE INDEX connections_due ON connections (next_refresh_at)
    WHERE next_refresh_at IS NOT NULL AND status <> 'broken';
-- Listing by status or upstream, in id order.
CREATE INDEX connections_by_status ON connections (status, id);
CREATE INDEX connections_by_upstream ON connections (upstream, id);

-- Where connections' versions come from: one counter for all, so a version never repeats for
-- an id, even one deleted and connected again.
CREATE TABLE connection_versions (
    last INTEGER NOT NULL
);
INSERT INTO connection_versions (last) VALUES (0);
