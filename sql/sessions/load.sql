-- Loads a live session and records its use: a session idle for longer than $2 seconds, or past its
-- absolute expiry, is not returned (and is deleted by the next purge).
UPDATE sessions SET last_seen_at = now()
WHERE key_hash = $1 AND expires_at > now() AND last_seen_at > now() - make_interval(secs => $2)
RETURNING user_id, state
