UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1
RETURNING id, user_id, name, token_prefix, scope, created_by, created_at, expires_at, last_used_at, revoked_at
