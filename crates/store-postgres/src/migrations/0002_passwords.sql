-- Provider users' passwords, as Argon2id PHC strings (salted hashes), for signing in.
ALTER TABLE users ADD COLUMN password_hash TEXT;
