-- Bench-only statements of bench/bench_soak.py. They read only what every layout keeps: the
-- `jobs` relation's contract fields (shared/DESIGN.md, "Jobs as users read them"), the
-- catalog and the statistics views, so that the same soak runs on any revision.

-- name: soak_minute
-- The last $1 seconds: jobs enqueued, jobs started with p50/p99 of enqueue -> start, and jobs
-- completed.
SELECT count(*) FILTER (WHERE created_at > now() - make_interval(secs => $1)) AS enqueued,
       count(*) FILTER (WHERE started_at > now() - make_interval(secs => $1)) AS started,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM started_at - created_at))
           FILTER (WHERE started_at > now() - make_interval(secs => $1)) AS p50,
       percentile_cont(0.99) WITHIN GROUP (
           ORDER BY extract(epoch FROM started_at - created_at))
           FILTER (WHERE started_at > now() - make_interval(secs => $1)) AS p99,
       count(*) FILTER (WHERE status = 'completed'
                          AND finished_at > now() - make_interval(secs => $1)) AS completed
FROM jobs
WHERE created_at > now() - make_interval(secs => $1)
   OR started_at > now() - make_interval(secs => $1)
   OR finished_at > now() - make_interval(secs => $1);

-- name: soak_tables
-- Every table of ours, found in the catalog (so the soak follows the layout): each table or
-- partitioned table that is not itself a partition, with its partitions summed in: its heap
-- (with TOAST) and index bytes, and dead tuples. The catalog's schemas and the soak's own
-- (`soak`, the rr pin's table) are not ours.
SELECT n.nspname || '.' || c.relname AS name,
       sum(pg_table_size(t.relid))::bigint AS table_bytes,
       sum(pg_indexes_size(t.relid))::bigint AS index_bytes,
       sum(coalesce(s.n_dead_tup, 0))::bigint AS dead
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (  -- the table itself, or a partitioned table's partitions
    SELECT c.oid AS relid WHERE c.relkind = 'r'
    UNION ALL
    SELECT p.relid FROM pg_partition_tree(c.oid) AS p WHERE p.relid <> c.oid
) AS t
LEFT JOIN pg_stat_user_tables AS s ON s.relid = t.relid
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'soak')
  AND n.nspname NOT LIKE 'pg\_%'
GROUP BY 1
ORDER BY 2 + 3 DESC, 1;

-- name: soak_horizon
-- The horizon's age: the oldest xmin or xid any other session holds, in transactions, and
-- how long the oldest transaction holding one has been open, in seconds.
SELECT max(greatest(age(backend_xmin), age(backend_xid))) AS xids,
       extract(epoch FROM now() - min(xact_start)) AS seconds
FROM pg_stat_activity
WHERE pid <> pg_backend_pid() AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL);

-- name: soak_pin_table
-- The rr pin's own table: its long query reads this, never ours.
CREATE SCHEMA IF NOT EXISTS soak;
CREATE TABLE IF NOT EXISTS soak.pin AS SELECT 1 AS n;

-- name: soak_pin_idle
-- The idle pin: a transaction that took an xid, then idles (a forgotten BEGIN).
SELECT txid_current();

-- name: soak_pin_rr
-- The rr pin: one long REPEATABLE READ query over a table of its own, for $1 seconds.
SELECT count(*) + 0 * count(pg_sleep($1)) FROM soak.pin;

-- name: soak_pin_reads_jobs
-- The reads-jobs pin: a REPEATABLE READ transaction that read our `jobs`, then idles.
SELECT count(*) FROM jobs;
