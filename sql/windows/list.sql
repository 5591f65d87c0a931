-- Environment $1's maintenance windows, one row per line as typed, in order.
SELECT DISTINCT ON (position) position, spec
FROM maintenance_windows
WHERE environment_id = $1
ORDER BY position
