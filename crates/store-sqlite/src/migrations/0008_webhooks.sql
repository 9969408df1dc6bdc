-- The webhook outbox: one row per connection event and configured endpoint, written in the
-- transaction of the connection change that caused the event, attempted by the deliverer until
-- an endpoint answers 2xx or the retry schedule ends. The payload holds no token.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- `msg_…`: the event's id, the `webhook-id` header of every attempt of every endpoint.
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    connection_id   TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- While pending: when it is attempted next.
    next_attempt_at INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    last_attempt_at INTEGER,
    delivered_at    INTEGER,
    -- Who attempts it and until when (a claim); a claim whose time has passed binds no one.
    claimed_by      BLOB,
    claimed_until   INTEGER,
    -- When the sweep deletes it (delivered or failed a while ago).
    forget_at       INTEGER,
    created_at      INTEGER NOT NULL
);
-- What the deliverer claims: pending ones, longest due first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
CREATE INDEX webhook_deliveries_forget ON webhook_deliveries (forget_at)
    WHERE forget_at IS NOT NULL;
