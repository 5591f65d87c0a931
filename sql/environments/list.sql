SELECT id, name, description, approval_required, approvals_required, execute_roles, lock_timeout_ms, statement_timeout_ms, target_lock_wait_ms, allow_out_of_order, lock_retries, lock_retry_max_delay_ms, lint_block, high_risk_approvals, created_at, updated_at FROM environments
WHERE ($1::text IS NULL OR name > $1)
ORDER BY name
LIMIT $2
