-- Ends every session of a user (disabled, or logged out everywhere).
DELETE FROM sessions WHERE user_id = $1
