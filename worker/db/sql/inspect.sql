-- The read side operators use: listing, stats, queues and workers.
-- Every statement here does bounded work on a table of millions of rows: counts stop at a
-- bound ($1 where named so), and larger numbers come from the planner's statistics.

-- name: list_jobs
-- params: $1 statuses, $2 queue_name, $3 job_type, $4 before_id, $5 max_rows
-- Newest first; the cursor is the last id of the previous page (keyset, no OFFSET).
SELECT *
FROM jobs
WHERE ($1::job_status[] IS NULL OR status = ANY ($1::job_status[]))
  AND ($2::text IS NULL OR queue_name = $2::text)
  AND ($3::text IS NULL OR job_type = $3::text)
  AND ($4::bigint IS NULL OR id < $4::bigint)
ORDER BY id DESC
LIMIT $5;

-- name: list_jobs_by_rare_status
-- params: $1 status, $2 queue_name, $3 job_type, $4 before_id, $5 max_rows,
--         $6 max_queues
-- list_jobs for one of failed, cancelled or blocked ($1), through jobs_rare_status_idx: each
-- queue's range is in id order, so the newest $5 of every queue (the one in $2, else at most
-- $6 that jobs_status_queues finds) merge into the page, instead of a walk down the primary
-- key past every newer job.
SELECT page.*
FROM (SELECT $2::text AS queue_name WHERE $2::text IS NOT NULL
      UNION ALL
      SELECT q.queue_name FROM jobs_status_queues($1::job_status, $6) AS q
      WHERE $2::text IS NULL) AS g
CROSS JOIN LATERAL (
    SELECT *
    FROM jobs AS j
    WHERE j.status = $1::job_status AND j.status IN ('failed', 'cancelled', 'blocked')
      AND j.queue_name = g.queue_name
      AND ($3::text IS NULL OR j.job_type = $3::text)
      AND ($4::bigint IS NULL OR j.id < $4::bigint)
    ORDER BY j.id DESC
    LIMIT $5
) AS page
ORDER BY page.id DESC
LIMIT $5;

-- name: list_jobs_running
-- params: $1 queue_name, $2 job_type, $3 before_id, $4 max_rows
-- list_jobs for running jobs: few (at most the workers' slots), so through jobs_running_idx
-- and a sort of those, rather than a walk down the primary key to an old long-running job.
SELECT *
FROM jobs
WHERE status = 'running'
  AND ($1::text IS NULL OR queue_name = $1::text)
  AND ($2::text IS NULL OR job_type = $2::text)
  AND ($3::bigint IS NULL OR id < $3::bigint)
ORDER BY id DESC
LIMIT $4;

-- name: sample_status_counts
-- params: $1 bound
-- Reads at most $1 rows: when fewer come back, these are the exact counts of the whole table.
SELECT status::text AS status, count(*) AS n
FROM (SELECT status FROM jobs LIMIT $1) AS sample
GROUP BY status;

-- name: status_estimates
-- The table's size and each status's share, as of the last ANALYZE (reltuples < 0: never).
SELECT c.reltuples::bigint AS total,
       s.most_common_vals::text::text[] AS statuses,
       s.most_common_freqs AS freqs
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_stats AS s
  ON s.schemaname = n.nspname AND s.tablename = c.relname
 AND s.attname = 'status' AND NOT s.inherited
WHERE c.oid = 'jobs'::regclass;

-- name: active_counts
-- params: $1 bound
-- pending and running through their partial indexes, finished ones through jobs_finished_idx;
-- each count stops at $1.
SELECT
    (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = 'pending' LIMIT $1) AS p)
        AS pending,
    (SELECT count(*) FROM (SELECT 1 FROM jobs WHERE status = 'running' LIMIT $1) AS r)
        AS running,
    (SELECT count(*)
     FROM (SELECT 1 FROM jobs
           WHERE status IN ('completed', 'failed', 'cancelled')
             AND finished_at > now() - interval '1 minute'
           LIMIT $1) AS d)
        AS done_last_minute;

-- name: queue_depths
-- params: $1 bound, $2 max_groups
-- Walks jobs_claim_idx from one (queue, priority) group to the next (a skip scan, at most
-- $2 groups), so the cost follows the number of groups, not of jobs. Each group's first entry
-- holds its earliest run_at. Ready and scheduled counts are range scans per group, each
-- stopping at $1. Queues with only running jobs, or only live workers (lease not expired),
-- are listed too.
WITH RECURSIVE heads AS (
    (SELECT queue_name, priority, run_at, 1 AS n
     FROM jobs
     WHERE status = 'pending'
     ORDER BY queue_name, priority DESC, run_at, id
     LIMIT 1)
    UNION ALL
    SELECT nxt.queue_name, nxt.priority, nxt.run_at, h.n + 1
    FROM heads AS h
    CROSS JOIN LATERAL (
        (SELECT j.queue_name, j.priority, j.run_at
         FROM jobs AS j
         WHERE j.status = 'pending' AND j.queue_name = h.queue_name AND j.priority < h.priority
         ORDER BY j.priority DESC, j.run_at, j.id
         LIMIT 1)
        UNION ALL
        (SELECT j.queue_name, j.priority, j.run_at
         FROM jobs AS j
         WHERE j.status = 'pending' AND j.queue_name > h.queue_name
         ORDER BY j.queue_name, j.priority DESC, j.run_at, j.id
         LIMIT 1)
        LIMIT 1
    ) AS nxt
    WHERE h.n < $2
),
groups AS (
    SELECT h.queue_name, h.run_at AS head_run_at,
        (SELECT count(*) FROM (
            SELECT 1 FROM jobs AS j
            WHERE j.status = 'pending' AND j.queue_name = h.queue_name
              AND j.priority = h.priority AND j.run_at <= now()
            LIMIT $1) AS x) AS ready,
        (SELECT count(*) FROM (
            SELECT 1 FROM jobs AS j
            WHERE j.status = 'pending' AND j.queue_name = h.queue_name
              AND j.priority = h.priority AND j.run_at > now()
            LIMIT $1) AS x) AS scheduled
    FROM heads AS h
),
pending AS (
    SELECT queue_name,
           sum(ready)::bigint AS ready,
           bool_or(ready >= $1) AS ready_capped,
           sum(scheduled)::bigint AS scheduled,
           bool_or(scheduled >= $1) AS scheduled_capped,
           min(head_run_at) FILTER (WHERE head_run_at <= now()) AS oldest_ready_at
    FROM groups
    GROUP BY queue_name
),
running AS (
    SELECT queue_name, count(*) AS running
    FROM jobs
    WHERE status = 'running'
    GROUP BY queue_name
),
served AS (
    SELECT queue_name, count(*) AS workers
    FROM workers, unnest(queues) AS queue_name
    WHERE lease_expires_at > now()
    GROUP BY queue_name
)
SELECT queue_name,
       coalesce(p.ready, 0) AS ready,
       coalesce(p.ready_capped, false) AS ready_capped,
       coalesce(p.scheduled, 0) AS scheduled,
       coalesce(p.scheduled_capped, false) AS scheduled_capped,
       coalesce(r.running, 0) AS running,
       extract(epoch FROM now() - p.oldest_ready_at)::float8 AS oldest_ready_age_seconds,
       coalesce(s.workers, 0) AS workers,
       (SELECT max(n) FROM heads) >= $2 AS truncated
FROM pending AS p
FULL JOIN running AS r USING (queue_name)
FULL JOIN served AS s USING (queue_name)
ORDER BY queue_name;

-- name: live_workers
-- Workers whose lease (renewed by each heartbeat) has not expired, with the jobs they run.
WITH in_flight AS (
    SELECT worker_id,
           jsonb_agg(jsonb_build_object(
               'id', id, 'job_type', job_type, 'queue_name', queue_name,
               'attempts', attempts, 'started_at', started_at) ORDER BY started_at, id) AS jobs
    FROM jobs
    WHERE status = 'running'
    GROUP BY worker_id
)
SELECT w.id, w.name, w.queues, w.concurrency, w.in_flight, w.started_at, w.heartbeat_at,
       w.lease_expires_at, coalesce(f.jobs, '[]'::jsonb) AS jobs
FROM workers AS w
LEFT JOIN in_flight AS f ON f.worker_id = w.id
WHERE w.lease_expires_at > now()
ORDER BY w.name, w.id;
