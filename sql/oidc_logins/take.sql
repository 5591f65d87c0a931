-- Takes a login exactly once: the row is gone after this, used or expired.
DELETE FROM oidc_logins WHERE state_hash = $1
RETURNING nonce, pkce_verifier, (expires_at > now()) AS "fresh!"
