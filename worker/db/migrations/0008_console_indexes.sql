-- The console's reads. Additive only: the previous release never reads these indexes and
-- keeps working on this schema.

-- "Jobs with status X (in queue Y), newest first" for the statuses that are rare, and the
-- overview's failed and blocked counts per queue. Without it such a filter walks the primary
-- key through every newer job (94 ms at 1M jobs for a status none has). queue_name second
-- lets one range serve a queue filter, and a skip from queue to queue serves the status alone
-- (each queue's range is already in id order). Partial: a job pays for an entry only when it
-- fails, is cancelled or waits on dependencies, so the enqueue, claim and complete path
-- writes nothing more. The common statuses need no such index: pending and completed jobs
-- are most of the newest ids, and running ones come from jobs_running_idx.
-- jobqueue: concurrently
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_rare_status_idx
    ON jobs (status, queue_name, id)
    WHERE status IN ('failed', 'cancelled', 'blocked');

-- Search by unique key, over finished jobs too. Partial: jobs without a key cost nothing.
-- jobqueue: concurrently
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_unique_key_lookup_idx
    ON jobs (unique_key)
    WHERE unique_key IS NOT NULL;

-- A job's page shows its batch's counts by status. Partial: jobs outside a batch cost nothing.
-- The workflows migration makes the same index under the same name; whichever runs first
-- makes it, and the other finds it there.
-- jobqueue: concurrently
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_batch_idx
    ON jobs (batch_id)
    WHERE batch_id IS NOT NULL;

-- The queues that have jobs of one rare status (failed, cancelled or blocked; any other
-- finds none), at most p_max of them: a skip from one queue to the next along
-- jobs_rare_status_idx, one index probe each, so the cost follows the number of queues, not
-- of jobs. Listing by status and counting by queue both start from it. The IN list lets the
-- planner prove the partial index's predicate for a status given as a parameter.
CREATE OR REPLACE FUNCTION jobs_status_queues(p_status job_status, p_max integer)
RETURNS TABLE (queue_name text)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE walk AS (
        (SELECT j.queue_name, 1 AS n
         FROM jobs AS j
         WHERE j.status = p_status AND j.status IN ('failed', 'cancelled', 'blocked')
         ORDER BY j.queue_name
         LIMIT 1)
        UNION ALL
        SELECT nxt.queue_name, w.n + 1
        FROM walk AS w
        CROSS JOIN LATERAL (
            SELECT j.queue_name
            FROM jobs AS j
            WHERE j.status = p_status AND j.status IN ('failed', 'cancelled', 'blocked')
              AND j.queue_name > w.queue_name
            ORDER BY j.queue_name
            LIMIT 1
        ) AS nxt
        WHERE w.n < p_max
    )
    SELECT walk.queue_name FROM walk
$$;
