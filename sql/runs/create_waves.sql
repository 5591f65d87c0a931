-- Stores run $1's wave plan (per wave: $2 first ordinal, $3 end ordinal, $4 the request's words, $5
-- max_failures), how its waves advance ($6) and the label its canaries were chosen by ($7 key, $8 value),
-- and readies the queue's counters for the first wave. Returns how many waves were stored.
WITH waves AS (
    INSERT INTO run_waves (run_id, wave, first_ordinal, end_ordinal, spec, max_failures)
    SELECT $1, (u.ord - 1)::integer, u.first_ordinal, u.end_ordinal, u.spec, u.max_failures
    FROM unnest($2::integer[], $3::integer[], $4::text[], $5::integer[])
        WITH ORDINALITY AS u (first_ordinal, end_ordinal, spec, max_failures, ord)
    RETURNING wave, first_ordinal, end_ordinal, max_failures
)
UPDATE runs r
SET wave_count = (SELECT count(*) FROM waves)::integer,
    advance = $6,
    first_label_key = $7,
    first_label_value = $8,
    current_wave = 0,
    wave_end = w.end_ordinal,
    wave_open = w.end_ordinal - w.first_ordinal,
    wave_failed = 0,
    wave_failures_allowed = w.max_failures
FROM waves w
WHERE r.id = $1 AND w.wave = 0
RETURNING r.wave_count
