-- Drift detection (issue 20): where an environment checks for drift (`drift_check_every` seconds; NULL:
-- off), a worker fingerprints a target's schema after every successful item (the baseline: what the hub's
-- last apply left) and again on that schedule, and compares. Fingerprints map object names (`table:orders`,
-- `index:orders_pkey`, …) to a digest of their normalized definitions: names only, never data.

ALTER TABLE environments
    ADD COLUMN drift_check_every integer CHECK (drift_check_every BETWEEN 60 AND 604800);

CREATE TABLE target_schemas (
    db_target_id        uuid PRIMARY KEY REFERENCES db_targets (id) ON DELETE CASCADE,
    baseline            jsonb NOT NULL CHECK (jsonb_typeof(baseline) = 'object'),
    baseline_at         timestamptz NOT NULL,
    -- The run whose apply left it, or the admin who accepted the schema as it was.
    baseline_run        uuid REFERENCES runs (id),
    accepted_by         uuid REFERENCES users (id),
    checked             jsonb CHECK (jsonb_typeof(checked) = 'object'),
    checked_at          timestamptz,
    -- [{"object", "change": "added" | "removed" | "changed"}] of the last check against the baseline.
    differences         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(differences) = 'array'),
    drifted_since       timestamptz,
    next_check_at       timestamptz,
    CONSTRAINT target_schemas_baseline_source CHECK ((baseline_run IS NULL) <> (accepted_by IS NULL)),
    CONSTRAINT target_schemas_drift_listed CHECK ((drifted_since IS NULL) = (differences = '[]'::jsonb))
);
CREATE INDEX target_schemas_due_idx ON target_schemas (next_check_at) WHERE next_check_at IS NOT NULL;
