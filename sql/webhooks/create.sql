-- A webhook of environment $2: $3 URL, $4 events, $5 format, its sealed secret ($6 ciphertext, $7 nonce,
-- $8 key id), made by $9.
INSERT INTO webhooks (id, environment_id, url, events, format, secret_ciphertext, secret_nonce, secret_key_id,
                      created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING id, environment_id, url, events, format, created_by, created_at
