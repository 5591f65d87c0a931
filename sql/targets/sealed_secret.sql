SELECT secret_ciphertext AS "ciphertext!", secret_nonce AS "nonce!", secret_key_id AS "key_id!"
FROM db_targets
WHERE id = $1 AND secret_ciphertext IS NOT NULL
