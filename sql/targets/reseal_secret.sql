-- Key rotation: swaps the ciphertext only if it is still the one that was re-encrypted, so a secret set
-- concurrently by an admin is never overwritten with an older value.
UPDATE db_targets
SET secret_ciphertext = $2, secret_nonce = $3, secret_key_id = $4
WHERE id = $1 AND secret_key_id = $5 AND secret_nonce = $6
