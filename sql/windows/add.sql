-- Adds environment $1's maintenance windows: per weekday of each line, $2 position, $3 the line, $4 ISO
-- weekday, $5 start and $6 end (minutes of the day; an end at or before the start is the next day's), $7
-- the time zone.
INSERT INTO maintenance_windows (environment_id, position, spec, weekday, starts, ends, timezone)
SELECT $1, u.position, u.spec, u.weekday, make_interval(mins => u.starts)::time,
       CASE WHEN u.ends = 1440 THEN '24:00'::time ELSE make_interval(mins => u.ends)::time END, u.timezone
FROM unnest($2::integer[], $3::text[], $4::smallint[], $5::integer[], $6::integer[], $7::text[])
    AS u (position, spec, weekday, starts, ends, timezone)
