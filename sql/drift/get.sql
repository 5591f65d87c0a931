-- Target $1's drift state (no row: the hub never fingerprinted it).
SELECT s.db_target_id, s.baseline_at, s.baseline_run, s.accepted_by, s.checked_at, s.differences,
       s.drifted_since, s.next_check_at, e.drift_check_every
FROM target_schemas s
JOIN db_targets t ON t.id = s.db_target_id
JOIN environments e ON e.id = t.environment_id
WHERE s.db_target_id = $1
