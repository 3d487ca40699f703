-- Sweeps that one worker at a time runs: lease rescue and retention.
-- Each runs inside a transaction that first takes a transaction-scoped advisory lock.
--
-- rescue_expired and rescue_dead_workers differ only in which jobs they pick (`expired`: id,
-- and why the job comes back); from `rescued` on they are the same text (a unit test,
-- tests/unit/test_sql_files.py, keeps it so).
-- The rows of `expired` go back to pending, or to failed when they have no tries left. Fenced:
-- the worker's id and its attempt's number go (a pending job has no worker), so its late
-- acknowledgement matches nothing.

-- name: try_lock
-- params: $1 lock_key
SELECT pg_try_advisory_xact_lock($1::bigint);

-- name: rescue_expired
-- params: $1 batch
-- Running jobs whose claim lease has expired and whose worker's lease has too (or whose
-- worker is gone) go back to pending, or to failed when they have no tries left.
WITH expired AS (
    SELECT j.id,
           'lease expired: worker ' || j.worker_id::text
           || ' stopped heartbeating while running attempt ' || j.attempts AS why
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
        last_error = expired.why,
        lease_expires_at = NULL
    FROM expired
    WHERE j.id = expired.id AND j.status = 'running'
    RETURNING j.id, j.status, j.queue_name,
              (j.has_dependents OR j.has_waiters OR j.batch_id IS NOT NULL) AS follow
)
SELECT count(*) FILTER (WHERE status = 'pending') AS requeued,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       (SELECT count(pg_notify('jobqueue_new_job', queue_name))
        FROM (SELECT DISTINCT queue_name FROM rescued WHERE status = 'pending') AS q) AS notified,
       -- jobs that failed for good follow up as acknowledged failures do (migration 0007)
       CASE WHEN bool_or(follow AND status = 'failed')
            THEN jobqueue_jobs_finished(
                array_agg(id) FILTER (WHERE follow AND status = 'failed')) END AS followed
FROM rescued;

-- name: dead_workers
-- params: $1 grace_seconds, $2 own_lock_key
-- Workers whose process is gone: they hold a liveness lock key (migration 0014), nobody holds
-- their lock, and they run jobs. This transaction then holds each such lock until it commits,
-- so the worker cannot take it back while its jobs are rescued. The lock is tried first (a
-- failed try costs nothing), and only for a worker found free are its jobs looked up: under a
-- pinned horizon that lookup walks every index entry the worker ever left, so live workers
-- must not pay it every second. None is tried within $1 seconds of the server's start: after a
-- restart every lock is free until its worker reconnects. $2 is the sweeper's own key, never
-- tried: the sweep may run on the session that holds it, and a session's own locks never
-- conflict with each other.
WITH keyed AS MATERIALIZED (
    SELECT w.id, w.lock_key
    FROM workers AS w
    WHERE w.lock_key IS NOT NULL AND w.lock_key IS DISTINCT FROM $2::integer
      AND pg_postmaster_start_time() < now() - make_interval(secs => $1)
),
free AS MATERIALIZED (
    SELECT id FROM keyed WHERE jobqueue_liveness_free(lock_key)
)
SELECT f.id
FROM free AS f
WHERE EXISTS (SELECT 1 FROM jobs AS j WHERE j.status = 'running' AND j.worker_id = f.id);

-- name: rescue_dead_workers
-- params: $1 worker_ids, $2 batch
-- The running jobs of workers whose liveness lock this transaction holds ($1 their ids; at
-- most $2 jobs) go back to pending, or to failed when they have no tries left. A separate
-- statement after dead_workers, so that its snapshot sees every claim those workers
-- committed before their lock was taken (a claim holds the lock too: jobqueue_liveness_gate).
WITH expired AS (
    SELECT j.id,
           'worker ' || j.worker_id::text || ' died (its liveness lock was free) while running '
           || 'attempt ' || j.attempts AS why
    FROM jobs AS j
    WHERE j.status = 'running' AND j.worker_id = ANY ($1::uuid[])
    ORDER BY j.id
    LIMIT $2
    FOR UPDATE OF j SKIP LOCKED
),
rescued AS (
    UPDATE jobs AS j
    SET status = CASE WHEN j.attempts >= j.max_tries THEN 'failed' ELSE 'pending' END::job_status,
        finished_at = CASE WHEN j.attempts >= j.max_tries THEN now() END,
        worker_id = CASE WHEN j.attempts >= j.max_tries THEN j.worker_id END,
        run_at = now(),
        last_error = expired.why,
        lease_expires_at = NULL
    FROM expired
    WHERE j.id = expired.id AND j.status = 'running'
    RETURNING j.id, j.status, j.queue_name,
              (j.has_dependents OR j.has_waiters OR j.batch_id IS NOT NULL) AS follow
)
SELECT count(*) FILTER (WHERE status = 'pending') AS requeued,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       (SELECT count(pg_notify('jobqueue_new_job', queue_name))
        FROM (SELECT DISTINCT queue_name FROM rescued WHERE status = 'pending') AS q) AS notified,
       -- jobs that failed for good follow up as acknowledged failures do (migration 0007)
       CASE WHEN bool_or(follow AND status = 'failed')
            THEN jobqueue_jobs_finished(
                array_agg(id) FILTER (WHERE follow AND status = 'failed')) END AS followed
FROM rescued;

-- name: forget_dead_workers
-- params: $1 older_than_seconds
-- Workers whose lease ran out long ago and that hold no running job.
DELETE FROM workers AS w
WHERE w.lease_expires_at < now() - make_interval(secs => $1)
  AND NOT EXISTS (SELECT 1 FROM jobs AS j WHERE j.status = 'running' AND j.worker_id = w.id);

-- name: prune_finished
-- params: $1 older_than_seconds, $2 batch
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
-- params: $1 older_than_seconds, $2 batch
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
