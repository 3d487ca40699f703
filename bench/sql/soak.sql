-- Bench-only statements of bench/bench_soak.py.

-- name: soak_minute
-- Jobs that started in the last $1 seconds: how many, and p50/p99 of enqueue -> start.
SELECT count(*) AS started,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM started_at - created_at)) AS p50,
       percentile_cont(0.99) WITHIN GROUP (
           ORDER BY extract(epoch FROM started_at - created_at)) AS p99
FROM jobs
WHERE started_at > now() - make_interval(secs => $1);

-- name: soak_completed
SELECT count(*) FROM jobs WHERE status = 'completed' AND finished_at > now() - make_interval(secs => $1);

-- name: soak_storage
-- Table and index bytes, dead tuples, and the age of the oldest xmin any session holds.
SELECT pg_table_size('jobs') AS table_bytes,
       pg_indexes_size('jobs') AS index_bytes,
       (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'jobs') AS dead,
       (SELECT max(age(backend_xmin)) FROM pg_stat_activity WHERE backend_xmin IS NOT NULL)
           AS oldest_xmin_age;

-- name: soak_pin
-- The pressure phase: an idle transaction that holds a snapshot (pins the xmin horizon).
SELECT count(*) FROM jobs;
