-- Records a decision for the run's current revision; the direction and environment are copied from the run
-- (and the composite foreign key would refuse any other).
INSERT INTO approvals (id, run_id, run_revision, direction, environment_id, approver_id, decision, comment,
                       content_checksum, carried_from)
SELECT $1, r.id, r.revision, r.direction, r.environment_id, $3, $4, $5, $6, $7
FROM runs r WHERE r.id = $2
RETURNING id, run_id, run_revision, direction, environment_id, approver_id, decision, comment, content_checksum, carried_from, created_at
