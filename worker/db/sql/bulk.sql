-- Bulk retry and cancel by filter, one short transaction per batch: jobs are walked in id order
-- (a keyset over the primary key, from $5 exclusive up to $6, the largest id when the operation
-- started, so that it never chases jobs enqueued meanwhile). Each statement returns the last id
-- it looked at, how many rows it looked at, and how many it changed.
-- Rows are picked from the statement's snapshot without locks; the UPDATE checks the status
-- again on the row's current version, so a job a worker changed meanwhile is left as it is.
-- Both statements walk the same `picked` batch: the filter's jobs of ids after $5 up to $6.

-- name: jobs_max_id
SELECT coalesce(max(id), 0) FROM jobs;

-- name: jobs_retry_batch
-- params: $1 statuses, $2 queue_name, $3 job_type, $4 created_before, $5 after_id,
--         $6 up_to_id, $7 batch_size
-- failed or cancelled -> pending now, with a try left, as POST /jobs/{id}/retry. A job whose
-- unique_key is held by an active job stays as it is (as does the second of two in one batch).
WITH picked AS (
    SELECT id, unique_key
    FROM jobs
    WHERE status = ANY ($1::job_status[])
      AND ($2::text IS NULL OR queue_name = $2::text)
      AND ($3::text IS NULL OR job_type = $3::text)
      AND ($4::timestamptz IS NULL OR created_at < $4::timestamptz)
      AND id > $5 AND id <= $6
    ORDER BY id
    LIMIT $7
),
retried AS (
    UPDATE jobs AS j
    SET status = 'pending', run_at = now(), started_at = NULL, finished_at = NULL,
        worker_id = NULL, lease_expires_at = NULL, result = NULL, last_error = NULL,
        max_tries = greatest(j.max_tries, j.attempts + 1)
    FROM picked AS p
    WHERE j.id = p.id AND j.status = ANY ($1::job_status[])
      AND (p.unique_key IS NULL OR (
          p.id = (SELECT min(o.id) FROM picked AS o WHERE o.unique_key = p.unique_key)
          AND NOT EXISTS (
              SELECT 1 FROM jobs AS a
              WHERE a.unique_key = p.unique_key
                AND a.status IN ('pending', 'running', 'blocked'))))
    RETURNING j.queue_name
)
SELECT (SELECT max(id) FROM picked) AS last_id,
       (SELECT count(*) FROM picked) AS looked,
       (SELECT count(*) FROM retried) AS changed,
       (SELECT count(pg_notify('jobqueue_new_job', queue_name))
        FROM (SELECT DISTINCT queue_name FROM retried) AS q) AS notified;

-- name: jobs_cancel_batch
-- params: $1 statuses, $2 queue_name, $3 job_type, $4 created_before, $5 after_id,
--         $6 up_to_id, $7 batch_size
-- pending, blocked or running -> cancelled, as POST /jobs/{id}/cancel: a running job's worker
-- is told at once, and its fenced writes change nothing any more.
WITH picked AS (
    SELECT id, unique_key
    FROM jobs
    WHERE status = ANY ($1::job_status[])
      AND ($2::text IS NULL OR queue_name = $2::text)
      AND ($3::text IS NULL OR job_type = $3::text)
      AND ($4::timestamptz IS NULL OR created_at < $4::timestamptz)
      AND id > $5 AND id <= $6
    ORDER BY id
    LIMIT $7
),
cancelled AS (
    UPDATE jobs AS j
    SET status = 'cancelled', finished_at = now(), lease_expires_at = NULL
    FROM picked AS p
    WHERE j.id = p.id AND j.status = ANY ($1::job_status[])
    RETURNING j.id, j.worker_id,
              (j.has_dependents OR j.has_waiters OR j.batch_id IS NOT NULL) AS follow
)
-- As cancel_job does: dependents, waiters and batches of the cancelled jobs follow up
-- (jobqueue_jobs_finished, migration 0007) in this same transaction.
SELECT (SELECT max(id) FROM picked) AS last_id,
       (SELECT count(*) FROM picked) AS looked,
       (SELECT count(*) FROM cancelled) AS changed,
       (SELECT count(pg_notify('jobqueue_cancel', id::text))
        FROM cancelled WHERE worker_id IS NOT NULL) AS notified,
       (SELECT jobqueue_jobs_finished(array_agg(id)) FROM cancelled WHERE follow) AS followed;
