-- Webhooks whose secret is sealed under another key than $1 (for rotation).
SELECT id, secret_ciphertext, secret_nonce, secret_key_id FROM webhooks WHERE secret_key_id <> $1 ORDER BY id
