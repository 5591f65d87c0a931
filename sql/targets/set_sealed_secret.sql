-- Replaces the secret with a sealed one (and drops any reference): one source at a time.
UPDATE db_targets
SET secret_ciphertext = $2, secret_nonce = $3, secret_key_id = $4, secret_ref = NULL, updated_at = now()
WHERE id = $1
RETURNING id, environment_id, name, engine, host, port, database_name, schema_name, username, secret_key_id, secret_ref, tls_mode, labels, variables, created_at, updated_at
