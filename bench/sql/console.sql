-- Bench-only statements for bench/bench_console.py.

-- name: drop_status_index
DROP INDEX IF EXISTS jobs_rare_status_idx;

-- name: create_status_index
-- migration 0008's index, made again after a run without it
CREATE INDEX IF NOT EXISTS jobs_rare_status_idx ON jobs (status, queue_name, id)
    WHERE status IN ('failed', 'cancelled', 'blocked');

-- name: seed_console_rows
-- What the other pages show: a day of scaling decisions for three Deployments, a few
-- schedules, a few cancelled jobs among the newest and one live worker.
INSERT INTO scaling_decisions (decided_at, namespace, deployment, from_replicas, to_replicas,
                               reason)
SELECT now() - interval '1 minute' * g, 'bench', 'worker-' || (g % 3), g % 7, (g + 1) % 7,
       'scale-up'
FROM generate_series(1, 1500) AS g;
INSERT INTO schedules (name, every_seconds, job, next_run_at)
SELECT 'every-' || g, 60 * g, '{"job_type": "noop", "payload": {}}', now() + interval '1 minute'
FROM generate_series(1, 20) AS g;
INSERT INTO workers (id, name, queues, concurrency, lease_expires_at)
VALUES (gen_random_uuid(), 'bench-worker', ARRAY['default', 'emails', 'reports'], 10,
        now() + interval '1 hour');
ANALYZE;

-- name: newest_job
SELECT max(id) AS id FROM jobs;

-- name: status_index_size
-- Pages in jobs_rare_status_idx (1 is its empty metapage), or NULL when it is dropped.
SELECT pg_relation_size(to_regclass('jobs_rare_status_idx')) / current_setting('block_size')::int
    AS pages;
