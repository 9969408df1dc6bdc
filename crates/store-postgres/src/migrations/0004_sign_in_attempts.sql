-- Sign-in attempts not followed by a success: per lowercased login at a client address, and
-- per address at any login (the row whose login is ''), each counted in a window that ends at
-- expires_at. The sweep deletes rows whose window has ended.
CREATE TABLE sign_in_attempts (
    address     TEXT NOT NULL,
    login       TEXT NOT NULL,
    attempts    BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (address, login)
);
CREATE INDEX sign_in_attempts_expiry ON sign_in_attempts (expires_at);
