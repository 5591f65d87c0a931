-- Looks a token up by its keyed hash (an indexed equality on a 32-byte MAC, so no timing oracle on the
-- token's content; the caller compares the returned hash again in constant time). Expiry and revocation
-- are judged by the caller with the clock it was given.
SELECT id, user_id, name, token_prefix, token_hash, scope, created_by, created_at, expires_at, last_used_at, revoked_at
FROM api_tokens WHERE token_hash = $1
