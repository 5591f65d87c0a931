SELECT id, user_id, name, token_prefix, scope, created_by, created_at, expires_at, last_used_at, revoked_at FROM api_tokens
WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2)
ORDER BY id DESC
LIMIT $3
