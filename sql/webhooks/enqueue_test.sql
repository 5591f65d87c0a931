-- Queues a test delivery to webhook $1 ($2: the hub's address for the link).
INSERT INTO webhook_deliveries (id, webhook_id, event, payload)
SELECT gen_random_uuid(), w.id, 'webhook.test',
       jsonb_build_object('event', 'webhook.test', 'webhook_id', w.id, 'environment', e.name,
                          'environment_id', e.id, 'at', now(),
                          'link', CASE WHEN $2::text IS NULL THEN NULL
                                       ELSE $2::text || '/admin/environments/' || e.id END)
FROM webhooks w
JOIN environments e ON e.id = w.environment_id
WHERE w.id = $1
RETURNING id
