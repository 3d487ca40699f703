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
