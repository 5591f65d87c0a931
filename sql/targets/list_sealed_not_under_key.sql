-- Targets whose secret is sealed under another key than $1: what key rotation still has to do.
SELECT id FROM db_targets
WHERE secret_key_id IS NOT NULL AND secret_key_id <> $1 AND ($2::uuid IS NULL OR id > $2)
ORDER BY id
LIMIT $3
