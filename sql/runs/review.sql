-- The SQL review findings run $1 pinned with its content (NULL: a run that runs no migration SQL, or one
-- from before the review).
SELECT review FROM runs WHERE id = $1
