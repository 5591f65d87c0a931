-- The history table names of every project: left out of targets' schema fingerprints.
SELECT DISTINCT history_table AS "history_table!" FROM projects ORDER BY 1
