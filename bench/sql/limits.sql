-- bench_limits.py's own statements.

-- name: spread_keys
-- Give every pending job one of $1 concurrency keys, round robin by id.
UPDATE jobs SET concurrency_key = 'tenant-' || (id % $1) WHERE status = 'pending';
