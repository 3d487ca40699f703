-- What applying one migration needs besides migrate.sql: the session's limits, and the state
-- of an index built CONCURRENTLY (a build that failed leaves it behind, invalid).

-- name: set_lock_timeout
-- params: $1 lock_timeout
SELECT set_config('lock_timeout', $1, false);

-- name: no_statement_timeout
SELECT set_config('statement_timeout', '0', false);

-- name: reset_lock_timeout
-- The session's own limits again, for a connection that goes on after migrating (one statement
-- each, so that each can be prepared).
RESET lock_timeout;

-- name: reset_statement_timeout
RESET statement_timeout;

-- name: index_is_valid
-- params: $1 index_name
-- NULL when there is no index of that name in the search path.
SELECT i.indisvalid
FROM pg_index AS i
WHERE i.indexrelid = to_regclass($1);

-- name: blockers
-- params: $1 table_name
-- Who may hold up a build on table $1: sessions of this database that lock it, or that hold
-- a snapshot (what CREATE INDEX CONCURRENTLY waits for), oldest first.
SELECT a.pid, coalesce(a.application_name, '') AS application, a.state,
       extract(epoch FROM now() - coalesce(a.xact_start, a.backend_start))::int AS age_seconds
FROM pg_stat_activity AS a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL
       OR a.pid IN (SELECT l.pid FROM pg_locks AS l WHERE l.relation = to_regclass($1)))
ORDER BY a.xact_start NULLS LAST
LIMIT 3;
