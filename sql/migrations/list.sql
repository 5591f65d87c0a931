-- Migrations of a project in version-key order (text order; callers needing natural order of numeric keys
-- sort a page with `VersionKey`'s ordering), keyset-paginated on the key.
SELECT id, project_id, version_key, name, source_path, created_by, created_at FROM migrations
WHERE project_id = $1 AND ($2::text IS NULL OR version_key > $2)
ORDER BY version_key
LIMIT $3
