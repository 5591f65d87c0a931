-- Maintenance windows (issue 20): an environment may have weekly windows in a time zone; workers claim its
-- items only inside one (an item running when a window closes finishes its migration and hands the rest
-- back). A run may also be scheduled: nothing of it is claimed before `not_before`.
--
-- One row per weekday of a window as typed (`spec`, e.g. "Sat 02:00-05:00 Europe/Berlin"); `ends` at or
-- before `starts` runs past midnight into the next day, and '24:00' is the end of the day. The three
-- functions below are the one place the rules are written; claims call them with the worker's clock.

CREATE TABLE maintenance_windows (
    environment_id  uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    -- The line's position in the environment's list, and the line as typed.
    position        integer NOT NULL CHECK (position >= 0),
    spec            text NOT NULL CHECK (char_length(spec) BETWEEN 1 AND 200),
    -- ISO day of week: 1 Monday … 7 Sunday.
    weekday         smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    starts          time NOT NULL,
    ends            time NOT NULL,
    timezone        text NOT NULL CHECK (char_length(timezone) BETWEEN 1 AND 64),
    PRIMARY KEY (environment_id, position, weekday),
    CONSTRAINT maintenance_windows_not_empty CHECK (starts <> ends)
);

ALTER TABLE runs ADD COLUMN not_before timestamptz;

-- When the window of environment `env` open at `at` closes; NULL when none is open (or it has none).
CREATE FUNCTION maintenance_window_end(env uuid, at timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT max(CASE WHEN w.ends > w.starts THEN (o.day + w.ends) AT TIME ZONE w.timezone
                    ELSE (o.day + 1 + w.ends) AT TIME ZONE w.timezone END)
    FROM maintenance_windows w
    -- An occurrence that started today, or yesterday and runs past midnight.
    CROSS JOIN LATERAL (VALUES ((at AT TIME ZONE w.timezone)::date),
                               ((at AT TIME ZONE w.timezone)::date - 1)) AS o (day)
    WHERE w.environment_id = env
      AND extract(isodow FROM o.day) = w.weekday
      AND (at AT TIME ZONE w.timezone) >= o.day + w.starts
      AND (at AT TIME ZONE w.timezone) < CASE WHEN w.ends > w.starts THEN o.day + w.ends ELSE o.day + 1 + w.ends END
$$;

-- Whether environment `env` lets workers claim at `at`: it has no window, or one is open.
CREATE FUNCTION maintenance_window_open(env uuid, at timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (SELECT 1 FROM maintenance_windows w WHERE w.environment_id = env)
        OR maintenance_window_end(env, at) IS NOT NULL
$$;

-- When the next window of environment `env` opens after `at`; NULL when it has none.
CREATE FUNCTION maintenance_window_next(env uuid, at timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT min((d.day + w.starts) AT TIME ZONE w.timezone)
    FROM maintenance_windows w
    CROSS JOIN LATERAL generate_series(0, 7) AS g (n)
    CROSS JOIN LATERAL (SELECT (at AT TIME ZONE w.timezone)::date + g.n AS day) AS d
    WHERE w.environment_id = env
      AND extract(isodow FROM d.day) = w.weekday
      AND (d.day + w.starts) AT TIME ZONE w.timezone > at
$$;
