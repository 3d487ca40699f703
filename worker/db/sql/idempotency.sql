-- What a reused idempotency key stands for: the job that holds it, to compare with the job a
-- request asked for (worker/api/idempotency.py). Served by jobs_idempotency_key_idx.

-- name: select_jobs_by_idempotency_keys
-- params: $1 keys
SELECT id, idempotency_key, job_type, queue_name, payload
FROM jobs
WHERE idempotency_key = ANY ($1::text[]);
