-- Sweeps that one worker at a time runs: lease rescue and retention.
-- Each runs inside a transaction that first takes a transaction-scoped advisory lock.

-- name: try_lock
SELECT pg_try_advisory_xact_lock($1::bigint);

-- name: rescue_expired
-- Running jobs whose claim lease has expired and whose worker's lease has too (or whose
-- worker is gone) go back to pending, or to failed when they have no tries left.
WITH expired AS (
    SELECT j.id
    FROM jobs AS j
    WHERE j.status = 'running' AND j.lease_expires_at < now()
      AND NOT EXISTS (
          SELECT 1 FROM workers AS w WHERE w.id = j.worker_id AND w.lease_expires_at >= now())
    ORDER BY j.lease_expires_at
    LIMIT $1
    FOR UPDATE OF j SKIP LOCKED
),
rescued AS (
    UPDATE jobs AS j
    SET status = CASE WHEN j.attempts >= j.max_tries THEN 'failed' ELSE 'pending' END::job_status,
        finished_at = CASE WHEN j.attempts >= j.max_tries THEN now() END,
        worker_id = CASE WHEN j.attempts >= j.max_tries THEN j.worker_id END,
        run_at = now(),
        last_error = 'lease expired: worker ' || j.worker_id::text
                     || ' stopped heartbeating while running attempt ' || j.attempts,
        lease_expires_at = NULL
    FROM expired
    WHERE j.id = expired.id
    RETURNING j.id, j.status, j.queue_name,
              (j.has_dependents OR j.has_waiters OR j.batch_id IS NOT NULL) AS follow
)
SELECT count(*) FILTER (WHERE status = 'pending') AS requeued,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       (SELECT count(pg_notify(:NEW_JOB_CHANNEL, queue_name))
        FROM (SELECT DISTINCT queue_name FROM rescued WHERE status = 'pending') AS q) AS notified,
       -- jobs that failed for good follow up as acknowledged failures do (migration 0007)
       CASE WHEN bool_or(follow AND status = 'failed')
            THEN jobqueue_jobs_finished(
                array_agg(id) FILTER (WHERE follow AND status = 'failed')) END AS followed
FROM rescued;

-- name: forget_dead_workers
-- Workers whose lease ran out long ago and that hold no running job.
DELETE FROM workers AS w
WHERE w.lease_expires_at < now() - make_interval(secs => $1)
  AND NOT EXISTS (SELECT 1 FROM jobs AS j WHERE j.status = 'running' AND j.worker_id = w.id);

-- name: prune_finished
-- One batch of finished jobs older than $1 seconds, at most $2 rows; returns how many. The
-- dependency edges of a pruned job go with it (found through job_dependencies_job_idx). A job
-- of a batch still open stays: the batch's callback counts its jobs by status when the last
-- one finishes, and a pruned one would be missing from the counts.
WITH pruned AS (
    DELETE FROM jobs
    WHERE id IN (
        SELECT id
        FROM jobs
        WHERE status IN ('completed', 'failed', 'cancelled')
          AND finished_at < now() - make_interval(secs => $1)
          AND (batch_id IS NULL
               OR NOT EXISTS (SELECT 1 FROM batches AS b
                              WHERE b.id = jobs.batch_id AND b.completed_at IS NULL))
        ORDER BY finished_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, dependencies_left IS NOT NULL AS had_dependencies
),
edges AS (
    DELETE FROM job_dependencies
    WHERE job_id = ANY (ARRAY(SELECT id FROM pruned WHERE had_dependencies))
)
SELECT count(*) FROM pruned;

-- name: prune_batches
-- One batch of completed batches older than $1 seconds, at most $2 rows; returns how many.
-- Completed means every job of it was terminal when its callback was enqueued, so its jobs go
-- by the same retention (a job's batch_id then names a batch that is gone: GET /batches 404s).
WITH pruned AS (
    DELETE FROM batches
    WHERE id IN (
        SELECT id
        FROM batches
        WHERE completed_at IS NOT NULL AND completed_at < now() - make_interval(secs => $1)
        ORDER BY completed_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
)
SELECT count(*) FROM pruned;
