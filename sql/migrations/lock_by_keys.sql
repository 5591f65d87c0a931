-- The migrations of a project with these version keys, locked (in id order, so concurrent importers never
-- deadlock) until the transaction ends: an import compares each with its newest version and numbers the
-- next one with no editor in between.
SELECT id, project_id, version_key, name, source_path, created_by, created_at FROM migrations
WHERE project_id = $1 AND version_key = ANY($2::text[])
ORDER BY id
FOR UPDATE
