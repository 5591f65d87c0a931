-- The next version of a migration; the caller holds the migration's row lock (migrations/lock.sql).
INSERT INTO migration_versions (id, migration_id, version_no, up_sql, down_sql, checksum_algorithm,
                                up_checksum, down_checksum, transaction_mode, up_statements, down_statements,
                                lint_results, source_hash, author_id)
SELECT $1, $2, COALESCE(max(version_no), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
FROM migration_versions WHERE migration_id = $2
RETURNING id, migration_id, version_no, up_sql, down_sql, checksum_algorithm, up_checksum, down_checksum, transaction_mode, up_statements, down_statements, lint_results, source_hash, author_id, created_at
