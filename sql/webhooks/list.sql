-- Environment $1's webhooks, oldest first.
SELECT id, environment_id, url, events, format, created_by, created_at
FROM webhooks
WHERE environment_id = $1
ORDER BY created_at, id
