-- The server and database this session is on: the cluster's system identifier (shared by nothing but the
-- cluster and its physical replicas) and the database's OID (stable across renames). A target whose
-- identity equals the tool database's is the tool database, whatever host name or port leads to it.
SELECT s.system_identifier AS "system_identifier!", d.oid::bigint AS "database_oid!", d.datname::text AS "database!"
FROM pg_control_system() AS s, pg_database AS d
WHERE d.datname = current_database()
