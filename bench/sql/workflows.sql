-- Bench-only statements of bench/bench_workflows.py.

-- name: complete_jobs_before
-- complete_jobs as it was before workflows (main at 9e2e32f): the anchor of the ack-cost figure.
WITH acks AS MATERIALIZED (SELECT $3::text::jsonb AS by_token)
UPDATE jobs AS j
SET status = 'completed', result = acks.by_token -> (j.id || ':' || j.attempts),
    finished_at = now(), lease_expires_at = NULL
FROM acks
WHERE j.id = ANY (ARRAY(SELECT unnest($1::bigint[])))
  AND j.status::text = 'running' AND j.worker_id = $2
  AND acks.by_token ? (j.id || ':' || j.attempts);

-- name: jobs_reset_running
-- Put acknowledged jobs back to running under the same lease, so each round acks the same rows.
UPDATE jobs SET status = 'running', finished_at = NULL, result = NULL
WHERE id = ANY ($1::bigint[]);

-- name: jobs_unfinished
SELECT count(*) FROM jobs WHERE status::text NOT IN ('completed', 'failed', 'cancelled');

-- name: jobs_times
SELECT id, started_at, finished_at FROM jobs ORDER BY id;

-- name: jobs_reblock
-- Undo an unblocking: the dependents blocked again on their one dependency, which runs again.
UPDATE jobs SET status = CASE WHEN id = $1 THEN 'running' ELSE 'blocked' END::job_status,
                dependencies_left = CASE WHEN id = $1 THEN NULL ELSE 1 END,
                finished_at = NULL, result = NULL
WHERE id = $1 OR id = ANY ($2::bigint[]);

-- name: jobs_unblock_bare
-- The anchor of the unblocking figure: the least any unblocking writes, one UPDATE of the same
-- rows by id, with nothing read from the edges.
UPDATE jobs SET status = 'pending', dependencies_left = 0
WHERE id = ANY ($1::bigint[]) AND status::text = 'blocked';

-- name: jobs_blocked
SELECT count(*) FROM jobs WHERE status::text = 'blocked';
