SELECT count(*) AS "count!" FROM db_set_members WHERE db_set_id = $1
