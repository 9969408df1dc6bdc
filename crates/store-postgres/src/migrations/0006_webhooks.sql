-- The webhook outbox: one row per connection event and configured endpoint, written in the
-- transaction of the connection change that caused the event, attempted by the deliverer until
-- an endpoint answers 2xx or the retry schedule ends. The payload holds no token.
CREATE TABLE webhook_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    -- `msg_…`: the event's id, the `webhook-id` header of every attempt of every endpoint.
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    connection_id   TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    -- While pending: when it is attempted next.
    next_attempt_at BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    last_attempt_at BIGINT,
    delivered_at    BIGINT,
    -- Who attempts it and until when (a claim); a claim whose time has passed binds no one.
    claimed_by      BYTEA,
    claimed_until   BIGINT,
    -- When the sweep deletes it (delivered or failed a while ago).
    forget_at       BIGINT,
    created_at      BIGINT NOT NULL
);
-- What the deliverer claims: pending ones, longest due first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
CREATE INDEX webhook_deliveries_forget ON webhook_deliveries (forget_at)
    WHERE forget_at IS NOT NULL;
