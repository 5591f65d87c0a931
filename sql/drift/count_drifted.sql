-- How many targets have drifted (for the dashboard and the metrics).
SELECT count(*) AS "drifted!" FROM target_schemas WHERE drifted_since IS NOT NULL
