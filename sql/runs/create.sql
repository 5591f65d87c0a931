INSERT INTO runs (id, migration_version_id, direction, environment_id, db_set_id, status, failure_policy,
                  concurrency_limit, comment, requested_by, idempotency_key, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL)
RETURNING id, migration_version_id, direction, environment_id, db_set_id, status, failure_policy, concurrency_limit, comment, requested_by, idempotency_key, executed_by, cancelled_by, created_at, updated_at, queued_at, started_at, finished_at
