-- Users by email, keyset-paginated: $1 is the last email of the previous page.
SELECT id, email, display_name, oidc_issuer, oidc_subject, (password_hash IS NOT NULL) AS "has_password!", role, disabled, created_at, updated_at, last_login_at FROM users
WHERE ($1::text IS NULL OR email > $1)
ORDER BY email
LIMIT $2
