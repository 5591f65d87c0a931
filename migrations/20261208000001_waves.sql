-- Waves (issue 20): a run over a db set may roll out in stages, canaries first. A wave starts when the one
-- before it ended within its failure budget (by itself or when a person continues it); a wave over its
-- budget halts the run: nothing more is claimed until a person continues or cancels it.
--
-- The plan is fixed at request: each wave is a range of the run's item ordinals (the set's stable order,
-- labelled targets first when asked). What the queue needs on its hot path lives on the run's row, which
-- claims and endings lock anyway, so neither reads the wave table:
--   wave_end               items with an ordinal below it may be claimed (the current wave's end);
--   wave_open              the current wave's items not yet ended;
--   wave_failed            the current wave's failed items;
--   wave_failures_allowed  how many it tolerates (its max_failures, raised when a person continues a halt).
-- A run without waves has wave_count 1 and an unbounded wave_end and budget: nothing changes for it.

ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status IN (
    'awaiting_approval', 'approved', 'denied', 'queued', 'running', 'halted', 'succeeded', 'failed', 'cancelled'));

ALTER TABLE runs
    ADD COLUMN wave_count            integer NOT NULL DEFAULT 1 CHECK (wave_count BETWEEN 1 AND 20),
    ADD COLUMN advance               text NOT NULL DEFAULT 'auto' CHECK (advance IN ('auto', 'manual')),
    -- Targets carrying this label (key, value) were put first.
    ADD COLUMN first_label_key       text CHECK (char_length(first_label_key) BETWEEN 1 AND 100),
    ADD COLUMN first_label_value     text CHECK (char_length(first_label_value) <= 200),
    ADD COLUMN current_wave          integer NOT NULL DEFAULT 0 CHECK (current_wave >= 0),
    ADD COLUMN wave_end              integer NOT NULL DEFAULT 2147483647 CHECK (wave_end > 0),
    ADD COLUMN wave_open             integer NOT NULL DEFAULT 0,
    ADD COLUMN wave_failed           integer NOT NULL DEFAULT 0 CHECK (wave_failed >= 0),
    ADD COLUMN wave_failures_allowed integer NOT NULL DEFAULT 2147483647 CHECK (wave_failures_allowed >= 0),
    ADD CONSTRAINT runs_current_wave CHECK (current_wave < wave_count),
    ADD CONSTRAINT runs_label_pair CHECK ((first_label_key IS NULL) = (first_label_value IS NULL));

CREATE TABLE run_waves (
    run_id              uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    wave                integer NOT NULL CHECK (wave >= 0),
    -- The items whose ordinal is in [first_ordinal, end_ordinal).
    first_ordinal       integer NOT NULL CHECK (first_ordinal >= 0),
    end_ordinal         integer NOT NULL,
    -- The request's words for it: "1 target", "10%".
    spec                text NOT NULL CHECK (char_length(spec) BETWEEN 1 AND 40),
    max_failures        integer NOT NULL CHECK (max_failures >= 0),
    -- Failures a person accepted by continuing the run after this wave halted it.
    tolerated_failures  integer NOT NULL DEFAULT 0 CHECK (tolerated_failures >= 0),
    started_at          timestamptz,
    -- Who continued the run into this wave; NULL when it started by itself (or is the first).
    started_by          uuid REFERENCES users (id),
    ended_at            timestamptz,
    PRIMARY KEY (run_id, wave),
    CONSTRAINT run_waves_range CHECK (end_ordinal > first_ordinal)
);
