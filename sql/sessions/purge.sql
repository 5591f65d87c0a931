-- Removes sessions past their absolute expiry or idle for longer than $1 seconds.
DELETE FROM sessions WHERE expires_at <= now() OR last_seen_at <= now() - make_interval(secs => $1)
