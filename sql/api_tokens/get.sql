SELECT id, user_id, name, token_prefix, scope, created_by, created_at, expires_at, last_used_at, revoked_at FROM api_tokens WHERE id = $1
