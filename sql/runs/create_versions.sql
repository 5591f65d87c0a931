-- The versions run $1 applies, in apply order ($2, positions from 0).
INSERT INTO run_migrations (run_id, position, migration_version_id)
SELECT $1, (v.ord - 1)::integer, v.id
FROM unnest($2::uuid[]) WITH ORDINALITY AS v (id, ord)
