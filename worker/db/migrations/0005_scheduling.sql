-- Scheduling: unique-while-active jobs and the periodic scheduler's due scan. Additive only:
-- the previous release never reads these indexes and keeps working.

-- At most one active job per unique_key. `blocked` counts as active, so that a blocked job
-- whose dependencies complete can always become pending: the key is held from enqueue to the
-- end. Jobs without a key (all of the previous release's) are not in the index at all.
-- jobqueue: concurrently
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS jobs_unique_key_active_idx
    ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('pending', 'running', 'blocked');

-- Each scheduler pass asks "which unpaused schedules are due?" and "when is the next one?".
CREATE INDEX IF NOT EXISTS schedules_due_idx
    ON schedules (next_run_at)
    WHERE NOT paused;

-- GET /queues counts each queue's blocked jobs; without this, that count would read the whole
-- table. Empty, and so free to maintain, while nothing is blocked.
-- jobqueue: concurrently
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_blocked_queue_idx
    ON jobs (queue_name)
    WHERE status = 'blocked';
