-- Run kinds (SPEC §4, recovery and adoption): besides a release, a run may record versions as applied
-- without running them (a baseline), adopt another tool's history, or recover one dirty history row. Each is
-- requested, approved (the content checksum covers the kind and its parameters) and executed by the
-- workers like a release. A run is for the members of a db set or for one target.

ALTER TABLE runs
    ADD COLUMN kind text NOT NULL DEFAULT 'release'
        CHECK (kind IN ('release', 'baseline', 'adopt', 'recovery')),
    -- A run for one target (no db set).
    ADD COLUMN db_target_id uuid,
    -- Adoption: the tool whose history is read, and its table when not the tool's default.
    ADD COLUMN adopt_from text
        CHECK (adopt_from IN ('goose', 'golang-migrate', 'flyway', 'sqlx', 'diesel', 'dbmate', 'refinery',
                              'sql-migrate')),
    ADD COLUMN adopt_table text CHECK (char_length(adopt_table) BETWEEN 1 AND 128),
    -- Recovery: how the dirty row is resolved, and the row as the server read it on the target at request.
    ADD COLUMN recovery_resolution text
        CHECK (recovery_resolution IN ('mark_applied', 'mark_rolled_back', 'resume')),
    ADD COLUMN seen_status text CHECK (char_length(seen_status) BETWEEN 1 AND 32),
    ADD COLUMN seen_statements_done integer CHECK (seen_statements_done >= 0),
    ADD COLUMN seen_statements_total integer CHECK (seen_statements_total >= 0),
    ADD COLUMN seen_checksum bytea CHECK (octet_length(seen_checksum) BETWEEN 1 AND 64),
    ADD COLUMN seen_error text CHECK (char_length(seen_error) <= 8000),
    ALTER COLUMN db_set_id DROP NOT NULL,
    ADD CONSTRAINT runs_target_fkey FOREIGN KEY (db_target_id, environment_id)
        REFERENCES db_targets (id, environment_id) ON DELETE RESTRICT,
    ADD CONSTRAINT runs_one_scope CHECK ((db_set_id IS NULL) <> (db_target_id IS NULL)),
    ADD CONSTRAINT runs_release_is_up_or_down CHECK (kind = 'release' OR direction = 'up'),
    ADD CONSTRAINT runs_adopt_from CHECK ((kind = 'adopt') = (adopt_from IS NOT NULL)),
    ADD CONSTRAINT runs_adopt_table CHECK (adopt_table IS NULL OR kind = 'adopt'),
    ADD CONSTRAINT runs_recovery_row CHECK (
        (kind = 'recovery') = (recovery_resolution IS NOT NULL)
        AND (kind = 'recovery') = (seen_status IS NOT NULL AND seen_statements_done IS NOT NULL
            AND seen_statements_total IS NOT NULL AND seen_checksum IS NOT NULL)
        AND (seen_error IS NULL OR kind = 'recovery')),
    ADD CONSTRAINT runs_recovery_one_target CHECK (kind <> 'recovery' OR db_target_id IS NOT NULL);
CREATE INDEX runs_target_idx ON runs (db_target_id, created_at DESC) WHERE db_target_id IS NOT NULL;

-- What a run does never changes: its kind, scope and parameters are set at request.
CREATE FUNCTION run_action_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kind IS DISTINCT FROM OLD.kind OR NEW.db_target_id IS DISTINCT FROM OLD.db_target_id
       OR NEW.db_set_id IS DISTINCT FROM OLD.db_set_id
       OR NEW.adopt_from IS DISTINCT FROM OLD.adopt_from OR NEW.adopt_table IS DISTINCT FROM OLD.adopt_table
       OR NEW.recovery_resolution IS DISTINCT FROM OLD.recovery_resolution
       OR NEW.seen_status IS DISTINCT FROM OLD.seen_status
       OR NEW.seen_statements_done IS DISTINCT FROM OLD.seen_statements_done
       OR NEW.seen_statements_total IS DISTINCT FROM OLD.seen_statements_total
       OR NEW.seen_checksum IS DISTINCT FROM OLD.seen_checksum
       OR NEW.seen_error IS DISTINCT FROM OLD.seen_error THEN
        RAISE EXCEPTION 'what run % does is set at request and never changes', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER runs_action_frozen BEFORE UPDATE ON runs
    FOR EACH ROW EXECUTE FUNCTION run_action_frozen();
