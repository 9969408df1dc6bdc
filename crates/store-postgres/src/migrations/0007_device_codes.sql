-- Device authorizations (RFC 8628): both codes kept only as SHA-256 digests. `state` is
-- `rules::DeviceState` (0 pending, 1 approved, 2 denied, 3 redeemed).
CREATE TABLE device_codes (
    device_digest    BYTEA PRIMARY KEY,
    user_code_digest BYTEA NOT NULL UNIQUE,
    app_id           BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scopes           TEXT NOT NULL,
    state            SMALLINT NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2, 3)),
    -- Who approved or denied it.
    user_id          BIGINT REFERENCES users (id) ON DELETE CASCADE,
    interval_secs    BIGINT NOT NULL,
    last_polled_at   BIGINT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX device_codes_by_expiry ON device_codes (expires_at);

-- Whether an app may start the device flow; off, as on GitHub, until switched on.
ALTER TABLE apps ADD COLUMN device_flow BOOLEAN NOT NULL DEFAULT false;

-- A family started through the device flow: its client is public and refreshes without its
-- client secret (GitHub's dialect).
ALTER TABLE families ADD COLUMN public_client BOOLEAN NOT NULL DEFAULT false;
