DELETE FROM sessions WHERE key_hash = $1
