-- A successful login: binds the OIDC identity on first login (pre-provisioned users have none yet) and
-- refreshes the display name. An identity already bound to another subject is never replaced.
UPDATE users
SET oidc_issuer = COALESCE(oidc_issuer, $2),
    oidc_subject = COALESCE(oidc_subject, $3),
    display_name = $4,
    last_login_at = now(),
    updated_at = now()
WHERE id = $1
RETURNING id, email, display_name, oidc_issuer, oidc_subject, (password_hash IS NOT NULL) AS "has_password!", role, disabled, created_at, updated_at, last_login_at
