-- Run $1's waves with where its queue stands (the run's counters repeated on each row) and, per wave, its
-- items by status. No row: the run has no waves.
SELECT r.advance, r.first_label_key, r.first_label_value, r.current_wave, r.wave_open, r.wave_failed,
       r.wave_failures_allowed,
       w.wave, w.first_ordinal, w.end_ordinal, w.spec, w.max_failures, w.tolerated_failures, w.started_at,
       w.started_by, u.email AS "started_by_email?", w.ended_at,
       count(i.id) FILTER (WHERE i.status = 'pending') AS "pending!",
       count(i.id) FILTER (WHERE i.status = 'running') AS "running!",
       count(i.id) FILTER (WHERE i.status = 'succeeded') AS "succeeded!",
       count(i.id) FILTER (WHERE i.status = 'skipped') AS "skipped!",
       count(i.id) FILTER (WHERE i.status = 'failed') AS "failed!",
       count(i.id) FILTER (WHERE i.status = 'cancelled') AS "cancelled!"
FROM run_waves w
JOIN runs r ON r.id = w.run_id
LEFT JOIN users u ON u.id = w.started_by
LEFT JOIN run_items i ON i.run_id = w.run_id AND i.ordinal >= w.first_ordinal AND i.ordinal < w.end_ordinal
WHERE w.run_id = $1
GROUP BY r.id, w.run_id, w.wave, u.email
ORDER BY w.wave
