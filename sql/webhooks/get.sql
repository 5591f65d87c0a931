-- Webhook $1.
SELECT id, environment_id, url, events, format, created_by, created_at
FROM webhooks
WHERE id = $1
