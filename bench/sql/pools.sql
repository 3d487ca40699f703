-- The capacity benchmarks' probes of a burst: counts, workers seen, scaler connections.

-- name: sample_burst
-- $1 queue. One sample: the burst's jobs by state, our controller's connections, and the
-- client connections that are neither a worker's, the benchmark's nor our controller's
-- (another scaler's).
SELECT
    (SELECT count(*) FROM jobs WHERE queue_name = $1 AND status = 'pending')::int AS pending,
    (SELECT count(*) FROM jobs WHERE queue_name = $1 AND status = 'running')::int AS running,
    (SELECT count(*) FROM jobs
     WHERE queue_name = $1 AND status IN ('completed', 'failed'))::int AS finished,
    (SELECT count(*) FROM pg_stat_activity
     WHERE backend_type = 'client backend' AND datname = current_database()
           AND application_name = 'jobqueue-controller')::int AS controller_connections,
    (SELECT count(*) FROM pg_stat_activity
     WHERE backend_type = 'client backend' AND datname = current_database()
           AND application_name NOT LIKE 'jobqueue-worker %'
           AND application_name NOT IN ('bench', 'jobqueue-controller'))::int AS other_connections;

-- name: select_workers
SELECT id, name FROM workers;

-- name: burst_times
-- $1 queue. The first start and the last finish, as seconds after $2 (the burst's commit).
SELECT extract(epoch FROM min(started_at) - $2)::float8 AS first_started,
       extract(epoch FROM max(finished_at) - $2)::float8 AS last_finished,
       count(*) FILTER (WHERE status = 'completed')::int AS completed
FROM jobs WHERE queue_name = $1;

-- name: jobs_on_deleted_pods
-- $1 queue, $2 worker ids, $3 the moments their pods were deleted (parallel arrays).
SELECT count(*)::int AS jobs
FROM jobs j
JOIN unnest($2::uuid[], $3::timestamptz[]) AS d(worker_id, deleted_at)
  ON j.worker_id = d.worker_id
WHERE j.queue_name = $1 AND j.started_at <= d.deleted_at
      AND (j.finished_at IS NULL OR j.finished_at > d.deleted_at);
