-- The controller's capacity reads: queue limits, the server's connection budget, and the run
-- times of jobs that finished, for the caps and the wait-time target.

-- name: select_queues_limits
-- params: $1 queues
-- $1 queues. Only configured queues have a row; a missing row means no limits.
SELECT name, concurrency_limit, rate_limit_jobs, rate_limit_per_seconds
FROM queues
WHERE name = ANY ($1::text[]);

-- name: select_connections_budget
-- params: $1 name_pattern
-- $1 a LIKE pattern for this Deployment's workers' application_name. Other users' sessions
-- may show a NULL backend_type to a role without pg_read_all_stats: count those as clients, so
-- an unprivileged view can only make the budget smaller. reserved_connections is PostgreSQL
-- 16's; before it, the setting is missing and reserves nothing.
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       coalesce(nullif(current_setting('reserved_connections', true), ''), '0')::int AS reserved,
       (SELECT count(*) FROM pg_stat_activity a
        WHERE (a.backend_type IS NULL OR a.backend_type = 'client backend')
              AND coalesce(a.application_name, '') NOT LIKE $1)::int AS not_ours;

-- name: sum_jobs_finished
-- params: $1 queues, $2 since, $3 first_seconds, $4 max_rows
-- $1 queues, $2 finished after this (NULL: the last $3 seconds), $4 at most this many rows, so
-- a read after a long gap costs the same as one after a tick. Served by jobs_finished_idx.
SELECT count(*)::int AS jobs,
       coalesce(sum(extract(epoch FROM f.finished_at - f.started_at)), 0)::float8 AS run_seconds,
       max(f.finished_at) AS last_finished_at
FROM (
    SELECT j.finished_at, j.started_at FROM jobs j
    WHERE j.status IN ('completed', 'failed')
          AND j.finished_at > coalesce($2::timestamptz, now() - make_interval(secs => $3))
          AND j.queue_name = ANY ($1::text[])
          AND j.started_at IS NOT NULL
    ORDER BY j.finished_at
    LIMIT $4) AS f;
