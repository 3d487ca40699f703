-- Unique-while-active jobs: at most one pending, running or blocked job per unique_key
-- (jobs_unique_key_active_idx). A duplicate enqueue gets the active job back, as a repeated
-- idempotency key does.

-- name: insert_unique_job
-- params: $1 job_type, $2 payload, $3 queue_name, $4 priority, $5 run_at,
--         $6 delay_seconds, $7 max_tries, $8 idempotency_key, $9 timeout_seconds, $10 unique_key,
--         $11 concurrency_key
-- No conflict target: a clash on the unique key or on the idempotency key both insert nothing.
INSERT INTO jobs (job_type, payload, queue_name, priority, run_at, max_tries, idempotency_key,
                  timeout_seconds, unique_key, concurrency_key)
VALUES ($1, $2::text::jsonb, $3, $4,
        coalesce($5, now() + make_interval(secs => coalesce($6, 0))), $7, $8, $9, $10, $11)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: job_by_idempotency_key
-- params: $1 idempotency_key
SELECT * FROM jobs WHERE idempotency_key = $1;

-- name: active_job_by_unique_key
-- params: $1 unique_key
SELECT * FROM jobs
WHERE unique_key = $1 AND status IN ('pending', 'running', 'blocked');
