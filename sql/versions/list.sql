SELECT id, migration_id, version_no, up_sql, down_sql, checksum_algorithm, up_checksum, down_checksum, transaction_mode, up_statements, down_statements, lint_results, source_hash, author_id, created_at FROM migration_versions
WHERE migration_id = $1 AND ($2::integer IS NULL OR version_no < $2)
ORDER BY version_no DESC
LIMIT $3
