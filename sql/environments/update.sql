UPDATE environments
SET description = $2, approval_required = $3, approvals_required = $4, execute_roles = $5,
    lock_timeout_ms = $6, statement_timeout_ms = $7, target_lock_wait_ms = $8, allow_out_of_order = $9,
    lock_retries = $10, lock_retry_max_delay_ms = $11, lint_block = $12, high_risk_approvals = $13,
    updated_at = now()
WHERE id = $1
RETURNING id, name, description, approval_required, approvals_required, execute_roles, lock_timeout_ms, statement_timeout_ms, target_lock_wait_ms, allow_out_of_order, lock_retries, lock_retry_max_delay_ms, lint_block, high_risk_approvals, created_at, updated_at
