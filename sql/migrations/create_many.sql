-- Many new migrations of one project in one statement (an import): one row per element of the arrays.
INSERT INTO migrations (id, project_id, version_key, name, source_path, created_by)
SELECT new.id, $1, new.version_key, new.name, new.source_path, $6
FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[]) AS new (id, version_key, name, source_path)
