-- Schedules run $1: nothing of it is claimed before $2.
UPDATE runs SET not_before = $2 WHERE id = $1
