UPDATE db_targets
SET secret_ciphertext = NULL, secret_nonce = NULL, secret_key_id = NULL, secret_ref = $2, updated_at = now()
WHERE id = $1
RETURNING id, environment_id, name, engine, host, port, database_name, schema_name, username, secret_key_id, secret_ref, tls_mode, labels, variables, created_at, updated_at
