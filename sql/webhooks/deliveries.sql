-- The newest $2 deliveries of environment $1's webhooks: the delivery log.
SELECT d.id, d.webhook_id, d.event, d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error,
       d.delivered_at, d.created_at
FROM webhook_deliveries d
JOIN webhooks w ON w.id = d.webhook_id
WHERE w.environment_id = $1
ORDER BY d.created_at DESC, d.id
LIMIT $2
