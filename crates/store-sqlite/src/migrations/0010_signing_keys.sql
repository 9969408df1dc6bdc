-- The provider's id_token signing keys, shared by every instance on the database. The private
-- key is stored only sealed under the master key (XChaCha20-Poly1305, bound to the kid); the
-- certificate and JWK parts are public. Of concurrent creators of one generation, the primary
-- key lets exactly one insert.
CREATE TABLE signing_keys (
    generation          INTEGER PRIMARY KEY,
    kid                 TEXT NOT NULL UNIQUE,
    sealed_private_key  BLOB NOT NULL,
    cert_pem            TEXT NOT NULL,
    jwk_n               TEXT NOT NULL,
    jwk_e               TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    -- When it starts to sign; published before, so verifiers that cache the key set know it.
    signs_from          INTEGER NOT NULL
);

-- The OpenID Connect nonce of the authorize request a code answers, for its id_token.
ALTER TABLE codes ADD COLUMN nonce TEXT;
