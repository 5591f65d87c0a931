SELECT id, email, display_name, oidc_issuer, oidc_subject, (password_hash IS NOT NULL) AS "has_password!", role, disabled, created_at, updated_at, last_login_at FROM users WHERE id = $1
