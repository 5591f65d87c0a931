-- A new session for a user who just logged in; it ends at the absolute timeout whatever its use.
INSERT INTO sessions (key_hash, user_id, state, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
