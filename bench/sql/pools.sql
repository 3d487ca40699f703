-- The capacity benchmarks' probes of a burst: counts, workers seen, scaler connections.

-- name: sample_burst
-- $1 queue, $2 the burst's first job id. One sample: the burst's jobs by state, our
-- controller's connections, and the client connections that are neither a worker's, the
-- benchmark's nor our controller's (another scaler's).
SELECT
    (SELECT count(*) FROM jobs
     WHERE queue_name = $1 AND id >= $2 AND status = 'pending')::int AS pending,
    (SELECT count(*) FROM jobs
     WHERE queue_name = $1 AND id >= $2 AND status = 'running')::int AS running,
    (SELECT count(*) FROM jobs
     WHERE queue_name = $1 AND id >= $2 AND status IN ('completed', 'failed'))::int AS finished,
    (SELECT count(*) FROM pg_stat_activity
     WHERE backend_type = 'client backend' AND datname = current_database()
           AND application_name = 'jobqueue-controller')::int AS controller_connections,
    (SELECT count(*) FROM pg_stat_activity
     WHERE backend_type = 'client backend' AND datname = current_database()
           AND application_name NOT LIKE 'jobqueue-worker %'
           AND application_name NOT IN ('bench', 'jobqueue-controller'))::int AS other_connections;

-- name: select_workers
-- Every worker, with its start's phases once it has claimed (workers.startup).
SELECT id, name, startup FROM workers;

-- name: burst_times
-- $1 queue, $3 the burst's first job id. The first start and the last finish, as seconds
-- after $2 (the burst's commit), and the jobs' run_at (when the controller's burst began).
SELECT extract(epoch FROM min(started_at) - $2)::float8 AS first_started,
       extract(epoch FROM max(finished_at) - $2)::float8 AS last_finished,
       extract(epoch FROM min(run_at))::float8 AS run_at,
       count(*) FILTER (WHERE status = 'completed')::int AS completed
FROM jobs WHERE queue_name = $1 AND id >= $3;

-- name: jobs_on_deleted_pods
-- $1 queue, $2 worker ids, $3 the moments their pods were deleted (parallel arrays), $4 the
-- burst's first job id.
SELECT count(*)::int AS jobs
FROM jobs j
JOIN unnest($2::uuid[], $3::timestamptz[]) AS d(worker_id, deleted_at)
  ON j.worker_id = d.worker_id
WHERE j.queue_name = $1 AND j.id >= $4 AND j.started_at <= d.deleted_at
      AND (j.finished_at IS NULL OR j.finished_at > d.deleted_at);
