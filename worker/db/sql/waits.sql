-- Waiting for a job to finish: the waiter flags the job so that the transaction that finishes
-- it notifies `jobqueue_job_finished` (jobqueue_jobs_finished, migration 0007). Only flagged
-- jobs are announced, so unwatched jobs cost no notification.

-- name: jobs_mark_waited
-- params: $1 job_id
-- Its own statement, committed before the job is read again: a completion that commits later
-- sees the flag; one that committed earlier is seen by that read.
UPDATE jobs SET has_waiters = true
WHERE id = $1 AND NOT has_waiters AND status::text NOT IN ('completed', 'failed', 'cancelled');
