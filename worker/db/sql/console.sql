-- The console's reads and actions. Every read does bounded work on a table of millions of
-- rows: counts stop at a bound, walks stop at a number of groups.

-- name: jobs_count_by_queue
-- params: $1 status, $2 bound, $3 max_queues
-- Jobs of status $1 (failed, cancelled or blocked) per queue (at most $3 queues), each count
-- stopping at $2, through jobs_rare_status_idx.
SELECT g.queue_name,
       (SELECT count(*) FROM (
            SELECT 1 FROM jobs AS j
            WHERE j.status = $1::job_status AND j.status IN ('failed', 'cancelled', 'blocked')
              AND j.queue_name = g.queue_name
            LIMIT $2) AS x) AS n
FROM jobs_status_queues($1::job_status, $3) AS g
ORDER BY g.queue_name;

-- name: queues_select_all
SELECT name, paused, concurrency_limit, key_concurrency_limit, rate_limit_jobs,
       rate_limit_per_seconds, updated_at
FROM queues
ORDER BY name;

-- name: jobs_throughput_recent
-- params: $1 sample
-- Jobs finished in each of the last 60 minutes, per queue, reading at most $1 jobs from the
-- start of each minute through jobs_finished_idx. A minute that has more is estimated from
-- the time its first $1 jobs took (`last_at`), so the cost stays 60 short range reads
-- however busy the hour was.
SELECT m.minutes_ago, s.queue_name, count(*) AS n, max(s.finished_at) AS last_at,
       min(w.start_at) AS start_at
FROM generate_series(0, 59) AS m (minutes_ago)
CROSS JOIN LATERAL (
    SELECT now() - (m.minutes_ago + 1) * interval '1 minute' AS start_at,
           now() - m.minutes_ago * interval '1 minute' AS end_at
) AS w
CROSS JOIN LATERAL (
    SELECT j.queue_name, j.finished_at
    FROM jobs AS j
    WHERE j.status IN ('completed', 'failed')
      AND j.finished_at >= w.start_at AND j.finished_at < w.end_at
    ORDER BY j.finished_at
    LIMIT $1
) AS s
GROUP BY m.minutes_ago, s.queue_name;

-- name: queues_upsert_paused
-- params: $1 name, $2 paused
-- A never-seen name gets its row, unlimited.
INSERT INTO queues (name, paused)
VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET paused = EXCLUDED.paused, updated_at = now()
RETURNING name, paused;

-- name: jobs_count_failed_matching
-- params: $1 queue_name, $2 job_type, $3 bound
SELECT count(*) AS n
FROM (SELECT 1 FROM jobs
      WHERE status = 'failed'
        AND ($1::text IS NULL OR queue_name = $1::text)
        AND ($2::text IS NULL OR job_type = $2::text)
      LIMIT $3) AS x;

-- name: jobs_retry_failed_matching
-- params: $1 queue_name, $2 job_type, $3 slice
-- One bounded slice ($3 jobs) of a bulk retry, as retry_job does it for one; the caller loops
-- until a slice comes back short. SKIP LOCKED: a job another transaction holds is left alone.
WITH picked AS (
    SELECT id FROM jobs
    WHERE status = 'failed'
      AND ($1::text IS NULL OR queue_name = $1::text)
      AND ($2::text IS NULL OR job_type = $2::text)
    ORDER BY id
    LIMIT $3
    FOR UPDATE SKIP LOCKED
),
retried AS (
    UPDATE jobs
    SET status = 'pending', run_at = now(), started_at = NULL, finished_at = NULL,
        worker_id = NULL, lease_expires_at = NULL, result = NULL,
        max_tries = greatest(max_tries, attempts + 1)
    FROM picked
    WHERE jobs.id = picked.id AND jobs.status = 'failed'
    RETURNING jobs.queue_name
),
notified AS (
    SELECT pg_notify('jobqueue_new_job', queue_name)
    FROM (SELECT DISTINCT queue_name FROM retried) AS q
)
SELECT (SELECT count(*) FROM retried) AS n, (SELECT count(*) FROM notified) AS queues;

-- name: jobs_select_by_key
-- params: $1 key, $2 max_rows
-- A search term taken as an idempotency key or a unique key, each through its own index.
(SELECT id FROM jobs WHERE idempotency_key = $1 ORDER BY id DESC LIMIT $2)
UNION
(SELECT id FROM jobs WHERE unique_key = $1 AND unique_key IS NOT NULL ORDER BY id DESC LIMIT $2)
ORDER BY id DESC
LIMIT $2;

-- name: jobs_select_one
-- params: $1 job_id
-- Every column, including those later migrations add, for the job's page.
SELECT * FROM jobs WHERE id = $1;

-- name: jobs_count_batch
-- params: $1 batch_id
SELECT status::text AS status, count(*) AS n
FROM jobs
WHERE batch_id = $1
GROUP BY status;

-- name: schedules_select_all
-- params: $1 max_rows
SELECT s.name, s.cron, s.every_seconds, s.timezone, s.job, s.paused, s.next_run_at,
       s.last_run_at, s.last_job_id, j.status::text AS last_job_status
FROM schedules AS s
LEFT JOIN jobs AS j ON j.id = s.last_job_id
ORDER BY s.name
LIMIT $1;

-- name: scaling_decisions_recent
-- params: $1 within_seconds, $2 per_deployment
-- The newest $2 decisions of each Deployment within $1 seconds. The Deployments come from a
-- skip along scaling_decisions_deployment_idx, one probe each, so a long history costs
-- nothing until it is shown.
WITH RECURSIVE deployments AS (
    (SELECT namespace, deployment
     FROM scaling_decisions
     ORDER BY namespace, deployment
     LIMIT 1)
    UNION ALL
    SELECT nxt.namespace, nxt.deployment
    FROM deployments AS d
    CROSS JOIN LATERAL (
        SELECT s.namespace, s.deployment
        FROM scaling_decisions AS s
        WHERE (s.namespace, s.deployment) > (d.namespace, d.deployment)
        ORDER BY s.namespace, s.deployment
        LIMIT 1
    ) AS nxt
)
SELECT r.id, r.decided_at, r.namespace, r.deployment, r.from_replicas, r.to_replicas,
       r.reason, r.detail
FROM deployments AS d
CROSS JOIN LATERAL (
    SELECT * FROM scaling_decisions AS s
    WHERE s.namespace = d.namespace AND s.deployment = d.deployment
      AND s.decided_at > now() - make_interval(secs => $1)
    ORDER BY s.decided_at DESC
    LIMIT $2
) AS r
ORDER BY r.namespace, r.deployment, r.decided_at;
