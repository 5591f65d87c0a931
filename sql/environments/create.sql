INSERT INTO environments (id, name, description, approval_required, approvals_required, execute_roles,
                          lock_timeout_ms, statement_timeout_ms, target_lock_wait_ms, allow_out_of_order,
                          lock_retries, lock_retry_max_delay_ms, lint_block, high_risk_approvals)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
RETURNING id, name, description, approval_required, approvals_required, execute_roles, lock_timeout_ms, statement_timeout_ms, target_lock_wait_ms, allow_out_of_order, lock_retries, lock_retry_max_delay_ms, lint_block, high_risk_approvals, created_at, updated_at
