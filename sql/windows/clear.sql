-- Removes environment $1's maintenance windows (before they are written again).
DELETE FROM maintenance_windows WHERE environment_id = $1
