-- Releases (SPEC §3, §4 "Releases"): a run applies an ordered list of migration versions of one project,
-- pinned at request with a content checksum, approved once for that content, and never changed once it
-- has started. Runs made before this file become one-migration releases with the same content.

-- The content checksum of a release, as `domain::release::content_checksum` computes it: SHA-256 over
-- "migrate-hub release v1\n" and, per version in apply order, "<version key> <up hex> <down hex or ->\n".
-- Used here only to give existing runs and approvals their checksum.
CREATE FUNCTION pg_temp.release_line(key text, up bytea, down bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT key || ' ' || encode(up, 'hex') || ' ' || COALESCE(encode(down, 'hex'), '-') || E'\n'
$$;

CREATE TABLE run_migrations (
    run_id              uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- Apply order, from 0: ascending version keys for an up release, descending for a down release.
    position            integer NOT NULL CHECK (position >= 0),
    migration_version_id uuid NOT NULL REFERENCES migration_versions (id) ON DELETE RESTRICT,
    CONSTRAINT run_migrations_pkey PRIMARY KEY (run_id, position),
    CONSTRAINT run_migrations_version_key UNIQUE (run_id, migration_version_id)
);
CREATE INDEX run_migrations_version_idx ON run_migrations (migration_version_id);

ALTER TABLE runs
    ADD COLUMN project_id uuid REFERENCES projects (id) ON DELETE RESTRICT,
    ADD COLUMN content_checksum bytea CHECK (octet_length(content_checksum) = 32),
    -- Bumped by every refresh (a re-pin to newer versions); approvals count only for the current one.
    ADD COLUMN revision integer NOT NULL DEFAULT 1 CHECK (revision >= 1),
    -- A retry of a failed or cancelled run, over the same content, for its unfinished targets.
    ADD COLUMN retry_of uuid REFERENCES runs (id) ON DELETE RESTRICT;

INSERT INTO run_migrations (run_id, position, migration_version_id)
SELECT id, 0, migration_version_id FROM runs;

-- An existing run's revision is its version number, so each approval keeps counting exactly where it did.
UPDATE runs r
SET project_id = m.project_id,
    revision = v.version_no,
    content_checksum = sha256(convert_to(
        E'migrate-hub release v1\n' || pg_temp.release_line(m.version_key, v.up_checksum, v.down_checksum), 'UTF8'))
FROM migration_versions v JOIN migrations m ON m.id = v.migration_id
WHERE v.id = r.migration_version_id;

ALTER TABLE runs
    ALTER COLUMN project_id SET NOT NULL,
    ALTER COLUMN content_checksum SET NOT NULL;
DROP INDEX runs_version_idx;
ALTER TABLE runs DROP COLUMN migration_version_id;
CREATE INDEX runs_project_idx ON runs (project_id, created_at DESC);
CREATE INDEX runs_retry_of_idx ON runs (retry_of) WHERE retry_of IS NOT NULL;

-- What a run applies never changes once it has started: its versions and content checksum are frozen.
CREATE FUNCTION run_content_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    run_status text;
BEGIN
    IF TG_TABLE_NAME = 'runs' THEN
        IF (NEW.content_checksum IS DISTINCT FROM OLD.content_checksum OR NEW.project_id <> OLD.project_id
            OR NEW.revision <> OLD.revision)
           AND OLD.status NOT IN ('awaiting_approval', 'approved') THEN
            RAISE EXCEPTION 'the content of run % is frozen once it has started (status %)', OLD.id, OLD.status
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END IF;
    SELECT status INTO run_status FROM runs WHERE id = COALESCE(NEW.run_id, OLD.run_id);
    IF run_status IS NOT NULL AND run_status NOT IN ('awaiting_approval', 'approved') THEN
        RAISE EXCEPTION 'the content of run % is frozen once it has started (status %)',
            COALESCE(NEW.run_id, OLD.run_id), run_status
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN COALESCE(NEW, OLD);
END;
$$;
CREATE TRIGGER runs_content_frozen BEFORE UPDATE ON runs
    FOR EACH ROW EXECUTE FUNCTION run_content_frozen();
CREATE TRIGGER run_migrations_frozen BEFORE INSERT OR UPDATE OR DELETE ON run_migrations
    FOR EACH ROW EXECUTE FUNCTION run_content_frozen();

-- Approvals pin the release's content checksum and the run's revision they were given for. The columns of
-- one-version approvals (version, up and down checksums) stay on the rows made before releases.
ALTER TABLE approvals
    ADD COLUMN content_checksum bytea CHECK (octet_length(content_checksum) = 32),
    ADD COLUMN run_revision integer CHECK (run_revision >= 1),
    -- A decision carried over from the run this one retries (same content, same environment).
    ADD COLUMN carried_from uuid REFERENCES approvals (id) ON DELETE RESTRICT;

UPDATE approvals a
SET run_revision = v.version_no,
    content_checksum = sha256(convert_to(
        E'migrate-hub release v1\n' || pg_temp.release_line(m.version_key, a.up_checksum, a.down_checksum), 'UTF8'))
FROM migration_versions v JOIN migrations m ON m.id = v.migration_id
WHERE v.id = a.migration_version_id;

ALTER TABLE approvals
    ALTER COLUMN content_checksum SET NOT NULL,
    ALTER COLUMN run_revision SET NOT NULL,
    ALTER COLUMN migration_version_id DROP NOT NULL,
    ALTER COLUMN checksum_algorithm DROP NOT NULL,
    ALTER COLUMN up_checksum DROP NOT NULL,
    DROP CONSTRAINT approvals_down_pins_down,
    DROP CONSTRAINT approvals_one_decision_per_approver,
    -- One decision per approver per revision of a run: a refresh needs (and allows) a new decision.
    ADD CONSTRAINT approvals_one_decision_per_approver UNIQUE (run_id, run_revision, approver_id);
CREATE INDEX approvals_carried_from_idx ON approvals (carried_from) WHERE carried_from IS NOT NULL;

-- Progress over a whole release: which migration an item is at (statements_done / _total are that
-- migration's), and how many it has.
ALTER TABLE run_items
    ADD COLUMN migrations_done integer NOT NULL DEFAULT 0 CHECK (migrations_done >= 0),
    ADD COLUMN migrations_total integer CHECK (migrations_total >= 0),
    ADD CONSTRAINT run_items_migration_progress CHECK (migrations_total IS NULL OR migrations_done <= migrations_total);

-- Each log line names the version it is about (NULL for lines about the whole item). Lines written from
-- now on number statements from 1.
ALTER TABLE run_item_logs
    ADD COLUMN version_key text CHECK (char_length(version_key) BETWEEN 1 AND 64);
