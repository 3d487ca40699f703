-- Unique-while-active jobs: at most one pending, running or blocked job per unique_key
-- (jobs_unique_key_active_idx). A duplicate enqueue gets the active job back, as a repeated
-- idempotency key does.

-- name: insert_unique_job
-- params: $1 job_type, $2 payload, $3 queue_name, $4 priority, $5 run_at,
--         $6 delay_seconds, $7 max_tries, $8 idempotency_key, $9 timeout_seconds, $10 unique_key,
--         $11 concurrency_key, $12 traceparent
-- No conflict target: a clash on the unique key or on the idempotency key both insert nothing.
INSERT INTO jobs (job_type, payload, queue_name, priority, run_at, max_tries,
                  idempotency_key, timeout_seconds, status, dependencies_left,
                  has_dependents, batch_id, last_error, finished_at, concurrency_key,
                  traceparent, unique_key)
SELECT n.*
FROM jobqueue_new_job(
    p_job_type => $1, p_payload => $2::text::jsonb, p_queue_name => $3, p_priority => $4,
    p_run_at => $5, p_delay_seconds => $6, p_max_tries => $7, p_idempotency_key => $8,
    p_timeout_seconds => $9, p_concurrency_key => $11, p_traceparent => $12,
    p_unique_key => $10) AS n
ON CONFLICT DO NOTHING
RETURNING *;

-- name: job_by_idempotency_key
-- params: $1 idempotency_key
SELECT * FROM jobs WHERE idempotency_key = $1;

-- name: active_job_by_unique_key
-- params: $1 unique_key
SELECT * FROM jobs
WHERE unique_key = $1 AND status IN ('pending', 'running', 'blocked');
