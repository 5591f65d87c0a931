INSERT INTO api_tokens (id, user_id, name, token_prefix, token_hash, scope, created_by, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id, user_id, name, token_prefix, scope, created_by, created_at, expires_at, last_used_at, revoked_at
