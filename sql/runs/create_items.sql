-- One item per member of the run's db set (or, when $2 is given, per member among those targets, e.g. the
-- unfinished targets of a retried run), in target-name order, all pending; a run for one target gets one item.
-- With a label ($3 key, $4 value), the members whose label has that value come first (canaries), each part
-- in name order: a run's waves are ranges of these ordinals.
INSERT INTO run_items (id, run_id, db_target_id, environment_id, ordinal)
SELECT gen_random_uuid(), r.id, m.db_target_id, r.environment_id, (row_number() OVER (
           ORDER BY CASE WHEN t.labels ->> $3::text = $4::text THEN 0 ELSE 1 END, t.name) - 1)::integer
FROM runs r
JOIN db_set_members m ON m.db_set_id = r.db_set_id
JOIN db_targets t ON t.id = m.db_target_id
WHERE r.id = $1 AND ($2::uuid[] IS NULL OR m.db_target_id = ANY($2))
UNION ALL
SELECT gen_random_uuid(), r.id, r.db_target_id, r.environment_id, 0
FROM runs r
WHERE r.id = $1 AND r.db_target_id IS NOT NULL
