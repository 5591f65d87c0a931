UPDATE users SET disabled = $2, updated_at = now() WHERE id = $1
RETURNING id, email, display_name, oidc_issuer, oidc_subject, (password_hash IS NOT NULL) AS "has_password!", role, disabled, created_at, updated_at, last_login_at
