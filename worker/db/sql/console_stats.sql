-- The console's numbers beside the queues (issue 24): totals by job type, and a job's worker by
-- name. Every read is bounded, so the pages cost the same at a million jobs.

-- name: job_type_totals
-- params: $1 bound
-- Per job type: jobs finished in the last hour (completed and failed), their mean run time
-- (finished - started) and mean wait (started - run_at), read from at most $1 of the newest
-- finished jobs through jobs_finished_idx; running jobs (jobs_running_idx); and pending jobs,
-- counted up to $1 over all types.
WITH finished AS (
    SELECT j.job_type, j.status, j.started_at, j.finished_at, j.run_at
    FROM jobs AS j
    WHERE j.status IN ('completed', 'failed')
      AND j.finished_at >= now() - interval '1 hour'
    ORDER BY j.finished_at DESC
    LIMIT $1
),
hour AS (
    SELECT job_type,
           count(*) FILTER (WHERE status = 'completed') AS completed,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           avg(extract(epoch FROM finished_at - started_at))::float8 AS run_seconds,
           avg(extract(epoch FROM started_at - run_at))
               FILTER (WHERE started_at >= run_at)::float8 AS wait_seconds
    FROM finished
    GROUP BY job_type
),
running AS (
    SELECT job_type, count(*) AS running
    FROM (SELECT job_type FROM jobs WHERE status = 'running' LIMIT $1) AS r
    GROUP BY job_type
),
pending AS (
    SELECT job_type, count(*) AS pending
    FROM (SELECT job_type FROM jobs WHERE status = 'pending' LIMIT $1) AS p
    GROUP BY job_type
)
SELECT t.job_type,
       coalesce(p.pending, 0)::int AS pending,
       coalesce(r.running, 0)::int AS running,
       coalesce(h.completed, 0)::int AS completed,
       coalesce(h.failed, 0)::int AS failed,
       h.run_seconds, h.wait_seconds,
       (SELECT count(*) FROM finished)::int = $1 AS hour_capped
FROM (SELECT job_type FROM hour UNION SELECT job_type FROM running
      UNION SELECT job_type FROM pending) AS t
LEFT JOIN hour AS h USING (job_type)
LEFT JOIN running AS r USING (job_type)
LEFT JOIN pending AS p USING (job_type)
ORDER BY t.job_type;

-- name: worker_names
-- params: $1 worker_ids
-- $1 worker ids: the names of those still registered.
SELECT id::text AS id, name FROM workers WHERE id = ANY ($1::uuid[]);
