-- Adds targets to a set. The environment is taken from the set, and the composite foreign key refuses a
-- target of another environment. Adding a member twice is a no-op.
INSERT INTO db_set_members (db_set_id, db_target_id, environment_id)
SELECT s.id, t.target_id, s.environment_id
FROM db_sets s, unnest($2::uuid[]) AS t(target_id)
WHERE s.id = $1
ON CONFLICT (db_set_id, db_target_id) DO NOTHING
