-- The runs that retry run $1, oldest first.
SELECT id FROM runs WHERE retry_of = $1 ORDER BY id
