-- The next version of each of many migrations in one statement (an import): one row per element of the
-- arrays, at most one per migration. The caller holds the migrations' row locks (migrations/lock_many.sql),
-- so the numbers are dense.
INSERT INTO migration_versions (id, migration_id, version_no, up_sql, down_sql, checksum_algorithm,
                                up_checksum, down_checksum, transaction_mode, up_statements, down_statements,
                                lint_results, source_hash, author_id)
SELECT new.id, new.migration_id,
       COALESCE((SELECT max(v.version_no) FROM migration_versions v WHERE v.migration_id = new.migration_id), 0) + 1,
       new.up_sql, new.down_sql, new.checksum_algorithm, new.up_checksum, new.down_checksum, new.transaction_mode,
       new.up_statements, new.down_statements, new.lint_results, new.source_hash, new.author_id
FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::bytea[], $8::text[],
            $9::jsonb[], $10::jsonb[], $11::jsonb[], $12::bytea[], $13::uuid[])
     AS new (id, migration_id, up_sql, down_sql, checksum_algorithm, up_checksum, down_checksum, transaction_mode,
             up_statements, down_statements, lint_results, source_hash, author_id)
