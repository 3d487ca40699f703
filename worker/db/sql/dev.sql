-- The local stack's live view (`jobqueue dev`).

-- name: count_jobs_recently_finished
-- params: $1 seconds, $2 cap
-- Jobs that finished in the last $1 seconds, per final status, through jobs_finished_idx;
-- the count stops at $2.
SELECT status::text AS status, count(*)::int AS n
FROM (SELECT status
      FROM jobs
      WHERE status IN ('completed', 'failed', 'cancelled')
        AND finished_at > now() - make_interval(secs => $1)
      LIMIT $2) AS recent
GROUP BY status;

-- name: database_exists
-- params: $1 database
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1);

-- name: create_database
-- The stack's one database; its name is worker/db/dev.py's DEV_DATABASE.
CREATE DATABASE jobqueue;
