-- Records a decision; the version, direction and environment are copied from the run (and the composite
-- foreign key would refuse any other).
INSERT INTO approvals (id, run_id, migration_version_id, direction, environment_id, approver_id, decision,
                       comment, checksum_algorithm, up_checksum, down_checksum)
SELECT $1, r.id, r.migration_version_id, r.direction, r.environment_id, $3, $4, $5, $6, $7, $8
FROM runs r WHERE r.id = $2
RETURNING id, run_id, migration_version_id, direction, environment_id, approver_id, decision, comment, checksum_algorithm, up_checksum, down_checksum, created_at
