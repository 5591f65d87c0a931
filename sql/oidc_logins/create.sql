-- Starts a login; abandoned ones are removed on the way.
WITH purged AS (DELETE FROM oidc_logins WHERE expires_at <= now())
INSERT INTO oidc_logins (state_hash, nonce, pkce_verifier, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
