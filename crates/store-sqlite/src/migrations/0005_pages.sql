-- The provider's pages: who manages an app, signed-in browser sessions (by digest), and
-- users' approvals of apps.
ALTER TABLE apps ADD COLUMN owner_id INTEGER REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX apps_owner ON apps (owner_id) WHERE owner_id IS NOT NULL;

CREATE TABLE web_sessions (
    digest      BLOB PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

CREATE TABLE consents (
    app_id      INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id)
) WITHOUT ROWID;
CREATE INDEX consents_user ON consents (user_id);

-- Whether a code's family gets a refresh token (Google's access_type=online gets none).
ALTER TABLE codes ADD COLUMN with_refresh INTEGER NOT NULL DEFAULT 1;

-- An app's live token families for its owner's page, without reading the whole table.
CREATE INDEX token_pairs_live_family ON token_pairs (family_id) WHERE state = 0;
