-- Device authorizations (RFC 8628): both codes kept only as SHA-256 digests. `state` is
-- `rules::DeviceState` (0 pending, 1 approved, 2 denied, 3 redeemed).
CREATE TABLE device_codes (
    device_digest    BLOB PRIMARY KEY,
    user_code_digest BLOB NOT NULL UNIQUE,
    app_id           INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scopes           TEXT NOT NULL,
    state            INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2, 3)),
    -- Who approved or denied it.
    user_id          INTEGER REFERENCES users (id) ON DELETE CASCADE,
    interval_secs    INTEGER NOT NULL,
    last_polled_at   INTEGER,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX device_codes_by_expiry ON device_codes (expires_at);

-- Whether an app may start the device flow; off, as on GitHub, until switched on.
ALTER TABLE apps ADD COLUMN device_flow INTEGER NOT NULL DEFAULT 0;

-- A family started through the device flow: its client is public and refreshes without its
-- client secret (GitHub's dialect).
ALTER TABLE families ADD COLUMN public_client INTEGER NOT NULL DEFAULT 0;
