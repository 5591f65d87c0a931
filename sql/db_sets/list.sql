SELECT id, environment_id, name, description, created_at, updated_at FROM db_sets
WHERE ($1::uuid IS NULL OR environment_id = $1) AND ($2::text IS NULL OR name > $2)
ORDER BY name
LIMIT $3
