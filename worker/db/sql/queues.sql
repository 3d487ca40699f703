-- Queue rows (pause state and limits) and what GET /queues adds to the depth: a queue without
-- a row is unpaused and unlimited, so the hot path never needs one.

-- name: queues_list
SELECT name, paused, concurrency_limit, key_concurrency_limit, rate_limit_jobs,
       rate_limit_per_seconds, created_at, updated_at
FROM queues
ORDER BY name;

-- name: queues_set_paused
-- params: $1 name, $2 paused
-- A name never seen before gets its row: users pause a queue before its first job.
INSERT INTO queues AS q (name, paused)
VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = now()
RETURNING name, paused, concurrency_limit, key_concurrency_limit, rate_limit_jobs,
          rate_limit_per_seconds, created_at, updated_at;

-- name: queues_paused
-- params: $1 queue_names
-- Which of $1 are paused (the controller's and the dev autoscaler's question).
SELECT name FROM queues WHERE paused AND name = ANY ($1::text[]) ORDER BY name;

-- name: queues_count_blocked
-- params: $1 queue_names, $2 bound
-- Blocked jobs per queue of $1, each count stopping at $2 (jobs_blocked_queue_idx).
SELECT q.queue_name,
       (SELECT count(*) FROM (
            SELECT 1 FROM jobs AS j
            WHERE j.status = 'blocked' AND j.queue_name = q.queue_name
            LIMIT $2) AS b) AS blocked
FROM unnest($1::text[]) AS q(queue_name);

-- name: queues_with_blocked
-- params: $1 max_queues
-- Queues that hold blocked jobs and nothing else, so that GET /queues lists them too: one
-- index descent per queue (a skip scan over jobs_blocked_queue_idx), at most $1 queues.
WITH RECURSIVE names AS (
    (SELECT queue_name, 1 AS n FROM jobs WHERE status = 'blocked' ORDER BY queue_name LIMIT 1)
    UNION ALL
    SELECT nxt.queue_name, names.n + 1
    FROM names
    CROSS JOIN LATERAL (
        SELECT j.queue_name FROM jobs AS j
        WHERE j.status = 'blocked' AND j.queue_name > names.queue_name
        ORDER BY j.queue_name
        LIMIT 1
    ) AS nxt
    WHERE names.n < $1
)
SELECT queue_name FROM names;
