-- Replaces a live session's state (its expiry is unchanged).
UPDATE sessions SET state = $2, last_seen_at = now()
WHERE key_hash = $1 AND expires_at > now()
