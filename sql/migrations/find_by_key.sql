SELECT id, project_id, version_key, name, source_path, created_by, created_at FROM migrations WHERE project_id = $1 AND version_key = $2
