-- The benchmarks' own statements: the raw-loop ceiling and the "is it drained yet?" probes.

-- name: raw_claim
-- The leanest SKIP LOCKED claim over our jobs table: no lease, no fencing, no ordering
-- across queues.
UPDATE jobs
SET status = 'running', attempts = attempts + 1, started_at = now()
WHERE id = ANY (ARRAY(
    SELECT id FROM jobs
    WHERE status = 'pending' AND queue_name = 'default' AND run_at <= now()
    ORDER BY priority DESC, run_at, id
    LIMIT $1
    FOR UPDATE SKIP LOCKED))
RETURNING id;

-- name: raw_complete
UPDATE jobs SET status = 'completed', finished_at = now() WHERE id = ANY ($1::bigint[]);

-- name: vacuum
VACUUM ANALYZE;

-- name: jobs_left
SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'pending')
    OR EXISTS (SELECT 1 FROM jobs WHERE status = 'running');

-- name: jobs_done
SELECT count(*) FROM jobs WHERE status = 'completed';

-- name: pgqueuer_left
SELECT EXISTS (SELECT 1 FROM pgqueuer);

-- name: connections_by_application
SELECT application_name, count(*) AS connections
FROM pg_stat_activity
WHERE datname = current_database() AND application_name LIKE '%bench-%'
GROUP BY application_name;

-- name: latencies
SELECT (result ->> 'latency')::float8 FROM jobs WHERE status = 'completed';

-- name: uncapped_ready_count
-- The count(*) a depth-polling scaler typically runs, kept here as
-- bench_controller's point of comparison for the capped probe. Its cost grows with the backlog.
SELECT count(*)::int FROM jobs
WHERE status = 'pending' AND queue_name = ANY ($1::text[]) AND run_at <= now();

-- name: fill_failed
-- bench_bulk: $1 failed no-op jobs, as a worker leaves them after their last try.
INSERT INTO jobs (job_type, status, attempts, max_tries, last_error, finished_at)
SELECT 'noop', 'failed', 3, 3, 'boom', now()
FROM generate_series(1, $1);

-- name: retry_all_at_once
-- bench_bulk's anchor: every failed job in one statement, one transaction.
UPDATE jobs
SET status = 'pending', run_at = now(), started_at = NULL, finished_at = NULL,
    worker_id = NULL, lease_expires_at = NULL, result = NULL,
    max_tries = greatest(max_tries, attempts + 1)
WHERE status = 'failed';

-- name: queues_rows
-- bench_claim_pause --configured: a row (not paused) for each of $1.
INSERT INTO queues (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING;

-- name: default_jobs_left
-- bench_drain_schedules: only the drained queue counts (the schedules' jobs wait elsewhere).
SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'pending' AND queue_name = 'default')
    OR EXISTS (SELECT 1 FROM jobs WHERE status = 'running' AND queue_name = 'default');

-- name: default_jobs_done
SELECT count(*) FROM jobs WHERE status = 'completed' AND queue_name = 'default';
