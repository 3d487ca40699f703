-- Jobs this worker claimed but has no handler for (a job type the API knows before the workers
-- do, in a rolling deploy) go back to pending without using up a try, and wait for a worker
-- that has one. The wait grows with the job's age: a quarter of it, at least $4 and at most $5
-- seconds, so a fresh job is seen again soon and an orphaned one costs one claim a minute.
-- Fenced like every acknowledgement (claims.sql): only jobs still running under this worker
-- on the attempt that claimed them.

-- name: defer_jobs
-- params: $1 ids, $2 worker_id, $3 by_token, $4 min_delay, $5 max_delay
-- by_token: a JSON object {"<id>:<attempts>": reason}.
WITH acks AS MATERIALIZED (SELECT $3::text::jsonb AS by_token),
deferred AS (
    SELECT j.id,
           least($5::float8, greatest($4::float8,
                 extract(epoch FROM now() - j.created_at)::float8 / 4)) AS delay
    FROM jobs AS j, acks
    WHERE j.id = ANY (ARRAY(SELECT unnest($1::bigint[])))
      AND j.status::text = 'running' AND j.worker_id = $2
      AND acks.by_token ? (j.id || ':' || j.attempts)
    FOR UPDATE OF j
)
UPDATE jobs AS j
SET status = 'pending', attempts = j.attempts - 1, worker_id = NULL, started_at = NULL,
    run_at = now() + make_interval(secs => d.delay),
    last_error = (acks.by_token ->> (j.id || ':' || j.attempts))
                 || '; next try in ' || round(d.delay::numeric, 1) || 's',
    lease_expires_at = NULL
FROM deferred AS d, acks
WHERE j.id = d.id;
