-- Retention for batches: a batch whose callback was enqueued (completed_at set) goes once it is
-- older than the retention, like finished jobs. Partial, so open batches cost the index nothing,
-- and the cleaner finds the old ones by a range scan instead of reading the table.
-- jobqueue: concurrently
CREATE INDEX CONCURRENTLY IF NOT EXISTS batches_completed_idx
    ON batches (completed_at)
    WHERE completed_at IS NOT NULL;
