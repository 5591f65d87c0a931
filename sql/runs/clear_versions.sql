-- Removes the versions of run $1 before a refresh pins new ones (refused by a trigger once it started).
DELETE FROM run_migrations WHERE run_id = $1
