-- Targets whose secret is sealed, in id order after $1: what key rotation looks at.
SELECT id FROM db_targets
WHERE secret_key_id IS NOT NULL AND ($1::uuid IS NULL OR id > $1)
ORDER BY id
LIMIT $2
