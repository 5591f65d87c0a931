-- The versions run $1 applies, in apply order, with their migration's key and name.
SELECT rm.position, m.version_key, m.name,
       v.id, v.migration_id, v.version_no, v.up_sql, v.down_sql, v.checksum_algorithm, v.up_checksum,
       v.down_checksum, v.transaction_mode, v.up_statements, v.down_statements, v.lint_results, v.source_hash,
       v.author_id, v.created_at
FROM run_migrations rm
JOIN migration_versions v ON v.id = rm.migration_version_id
JOIN migrations m ON m.id = v.migration_id
WHERE rm.run_id = $1
ORDER BY rm.position
