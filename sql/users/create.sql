-- Creates a user; the email (and the OIDC identity, if given) must not exist yet.
INSERT INTO users (id, email, display_name, oidc_issuer, oidc_subject, password_hash, role)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, email, display_name, oidc_issuer, oidc_subject, (password_hash IS NOT NULL) AS "has_password!", role, disabled, created_at, updated_at, last_login_at
