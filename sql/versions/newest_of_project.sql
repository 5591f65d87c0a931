-- The newest version of every migration of project $1 (or only of the migrations $2, when given), with
-- the migration's key and name. Natural version-key order is applied by the caller.
SELECT DISTINCT ON (m.id) m.version_key, m.name,
       v.id, v.migration_id, v.version_no, v.up_sql, v.down_sql, v.checksum_algorithm, v.up_checksum,
       v.down_checksum, v.transaction_mode, v.up_statements, v.down_statements, v.lint_results, v.source_hash,
       v.author_id, v.created_at
FROM migrations m
JOIN migration_versions v ON v.migration_id = m.id
WHERE m.project_id = $1 AND ($2::uuid[] IS NULL OR m.id = ANY($2))
ORDER BY m.id, v.version_no DESC
