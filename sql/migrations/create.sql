INSERT INTO migrations (id, project_id, version_key, name, source_path, created_by)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, project_id, version_key, name, source_path, created_by, created_at
