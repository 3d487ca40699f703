-- Reconcile at every heartbeat asks "which rows run under worker X?": this partial index
-- answers it at a cost bounded by that worker's own rows, whatever the size of the table.
-- `worker_id IS NOT NULL` keeps it out of queries that do not name a worker (the depth
-- probe counts running jobs through jobs_running_idx). Additive only: the previous release
-- never reads it and keeps working.
-- jobqueue: concurrently
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_worker_running_idx
    ON jobs (worker_id)
    WHERE status = 'running' AND worker_id IS NOT NULL;
