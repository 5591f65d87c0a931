-- The names of the given targets (for lists that show targets by id).
SELECT id, name FROM db_targets WHERE id = ANY($1::uuid[])
