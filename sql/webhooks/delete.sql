-- Deletes webhook $1 and its delivery log.
DELETE FROM webhooks WHERE id = $1
RETURNING id
