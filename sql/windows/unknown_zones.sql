-- Which of the names $1 the database does not know as time zones.
SELECT z AS "zone!"
FROM unnest($1::text[]) AS z
WHERE NOT EXISTS (SELECT 1 FROM pg_timezone_names n WHERE n.name = z)
