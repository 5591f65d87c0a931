-- Records target $1's schema fingerprint $2 as its baseline, left by run $3 at $4: no drift, next check
-- after $5 seconds (NULL: none scheduled).
INSERT INTO target_schemas (db_target_id, baseline, baseline_at, baseline_run, checked, checked_at, next_check_at)
VALUES ($1, $2, $4::timestamptz, $3, $2, $4::timestamptz, $4::timestamptz + make_interval(secs => $5::double precision))
ON CONFLICT (db_target_id) DO UPDATE
SET baseline = EXCLUDED.baseline, baseline_at = EXCLUDED.baseline_at, baseline_run = EXCLUDED.baseline_run,
    accepted_by = NULL, checked = EXCLUDED.checked, checked_at = EXCLUDED.checked_at, differences = '[]',
    drifted_since = NULL, next_check_at = EXCLUDED.next_check_at
