-- The provider's pages: who manages an app, signed-in browser sessions (by digest), and
-- users' approvals of apps.
ALTER TABLE apps ADD COLUMN owner_id BIGINT REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX apps_owner ON apps (owner_id) WHERE owner_id IS NOT NULL;

CREATE TABLE web_sessions (
    digest      BYTEA PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

CREATE TABLE consents (
    app_id      BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX consents_user ON consents (user_id);

-- Whether a code's family gets a refresh token (Google's access_type=online gets none).
ALTER TABLE codes ADD COLUMN with_refresh BOOLEAN NOT NULL DEFAULT true;

-- An app's live token families for its owner's page, without reading the whole table.
CREATE INDEX token_pairs_live_family ON token_pairs (family_id) WHERE state = 0;
