-- The controller's watch on the database's health: the oldest transaction holding back the
-- xmin horizon, and the connection headroom. It reads only shared memory (pg_stat_activity,
-- pg_prepared_xacts and settings), never a table, so it costs the same on any database.

-- name: select_database_pressure
-- One row. The oldest holder among sessions with a snapshot (backend_xmin) or a transaction id
-- (backend_xid), and prepared transactions. Its age: since the transaction began, except for a
-- running statement with no transaction id, whose snapshot may be the statement's own (READ
-- COMMITTED), so since the statement began; a conservative age, never an overstated one.
-- Other roles' sessions show no xmin to a role without pg_read_all_stats: sees_all says so.
-- Parallel workers share their leader's snapshot, and vacuum's does not hold back other
-- vacuums, so only client sessions and WAL senders (hot_standby_feedback) count.
WITH holders AS (
    SELECT a.pid, a.application_name, a.state,
           extract(epoch FROM now() - CASE
               WHEN a.backend_xid IS NULL AND a.state = 'active' THEN a.query_start
               ELSE a.xact_start END)::float8 AS age_seconds
    FROM pg_stat_activity AS a
    WHERE (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)
          AND a.backend_type IN ('client backend', 'walsender')
          AND a.pid <> pg_backend_pid()
    UNION ALL
    SELECT NULL, p.gid, 'prepared', extract(epoch FROM now() - p.prepared)::float8
    FROM pg_prepared_xacts AS p
),
oldest AS (
    SELECT * FROM holders WHERE age_seconds IS NOT NULL ORDER BY age_seconds DESC LIMIT 1
)
SELECT o.pid, o.application_name, o.state, o.age_seconds,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
           + coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int
           AS reserved_connections,
       (SELECT count(*) FROM pg_stat_activity AS a
        WHERE a.backend_type IS NULL OR a.backend_type = 'client backend')::int
           AS client_connections,
       pg_has_role('pg_read_all_stats', 'USAGE') AS sees_all
FROM (SELECT 1) AS one
LEFT JOIN oldest AS o ON true;
