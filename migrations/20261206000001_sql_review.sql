-- SQL review decides (SPEC §4, issue 18): the environment's policy says which findings refuse a release at
-- request and how many extra approvals a high-risk release needs; a project names the dialects its
-- migrations are written for and may switch review rules off; a run pins the risk and the findings of its
-- content at request (a finished run never changes what it shows), and an admin's override of a refusal.
--
-- Existing environments keep their approvals as they were (no extra approval for high risk) until an admin
-- sets one; new production-like environments get one. Existing runs were never reviewed: their risk is NULL.
ALTER TABLE environments
    ADD COLUMN lint_block text NOT NULL DEFAULT 'error' CHECK (lint_block IN ('error', 'warning', 'never')),
    ADD COLUMN high_risk_approvals smallint NOT NULL DEFAULT 0 CHECK (high_risk_approvals BETWEEN 0 AND 10);

ALTER TABLE projects
    ADD COLUMN dialects text[] NOT NULL DEFAULT '{postgres,mysql}'
        CHECK (cardinality(dialects) BETWEEN 1 AND 2 AND dialects <@ '{postgres,mysql}'::text[]
               AND array_position(dialects, NULL) IS NULL),
    ADD COLUMN lint_rules_off text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(lint_rules_off) <= 100 AND array_position(lint_rules_off, NULL) IS NULL);

ALTER TABLE runs
    ADD COLUMN risk text CHECK (risk IN ('low', 'medium', 'high')),
    ADD COLUMN review jsonb CHECK (jsonb_typeof(review) = 'array' AND octet_length(review::text) <= 1048576),
    ADD COLUMN lint_override text CHECK (char_length(lint_override) BETWEEN 1 AND 2000),
    ADD COLUMN lint_override_by uuid REFERENCES users (id),
    ADD CONSTRAINT runs_review_with_risk CHECK ((review IS NULL) = (risk IS NULL)),
    ADD CONSTRAINT runs_lint_override_by CHECK ((lint_override IS NULL) = (lint_override_by IS NULL));

-- The review a run pinned changes only with its content, by a refresh before the run starts.
CREATE FUNCTION run_review_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.risk IS DISTINCT FROM OLD.risk OR NEW.review IS DISTINCT FROM OLD.review
        OR NEW.lint_override IS DISTINCT FROM OLD.lint_override
        OR NEW.lint_override_by IS DISTINCT FROM OLD.lint_override_by)
       AND OLD.status NOT IN ('awaiting_approval', 'approved') THEN
        RAISE EXCEPTION 'the SQL review run % pinned changes only by a refresh before it starts', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER runs_review_frozen BEFORE UPDATE ON runs
    FOR EACH ROW EXECUTE FUNCTION run_review_frozen();
