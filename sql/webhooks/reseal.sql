-- Replaces webhook $1's sealed secret with ($2 ciphertext, $3 nonce, $4 key id), only while it is still the
-- one opened ($5 ciphertext): a concurrent change is never overwritten.
UPDATE webhooks
SET secret_ciphertext = $2, secret_nonce = $3, secret_key_id = $4
WHERE id = $1 AND secret_ciphertext = $5
RETURNING id
