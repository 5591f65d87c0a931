DELETE FROM db_set_members WHERE db_set_id = $1 AND db_target_id = ANY($2::uuid[])
