-- The broker's single flight across processes: one lease per (upstream, refresh token).
CREATE TABLE leases (
    key         BLOB PRIMARY KEY,
    holder      BLOB NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- When every token of a pair has expired and the sweep may delete it; NULL: never.
ALTER TABLE token_pairs ADD COLUMN dead_after INTEGER;
UPDATE token_pairs SET dead_after = CASE
    WHEN access_expires_at IS NULL THEN NULL
    WHEN refresh_digest IS NULL THEN access_expires_at
    WHEN refresh_expires_at IS NULL THEN NULL
    ELSE max(access_expires_at, refresh_expires_at) END;
CREATE INDEX token_pairs_dead_after ON token_pairs (dead_after) WHERE dead_after IS NOT NULL;
